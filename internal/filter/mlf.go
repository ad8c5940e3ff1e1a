package filter

import "time"

// mlfCache holds the connections of a filter with <F-MLFID> (fail2ban's multi-line failure id,
// such as "host sshd[1234]: "): what earlier lines of a connection said (its host, its users,
// whether it logged in) so that a later line of the same connection can be judged. sshd's stock
// filter needs it: "Connection from <HOST>" carries the address, a later "Disconnecting: Too many
// authentication failures" does not.
//
// The rules follow fail2ban's, so stock filters give the same verdicts:
//   - <F-NOFAIL> marks a line that is no failure by itself; <F-MLFGAINED> (a successful login)
//     is a nofail that also clears a failure still waiting for its host;
//   - the nofail state is that of the latest line of the connection only;
//   - a connection that tried more than one user, or whose earlier failure was waiting for its
//     host, is a failure even on a nofail line;
//   - <F-MLFFORGET> ends the connection (after this line is judged).
//
// It is bounded: at most max connections, each forgotten after ttl of read time.
type mlfCache struct {
	max     int
	ttl     time.Duration
	entries map[string]*mlfEntry
	gen     uint64 // bumped on every touch of an entry
	// order lists connections by the time they were last seen, oldest first, for O(1) eviction;
	// an entry seen again is queued again and its older queue slots are skipped.
	order []mlfSeen
}

type mlfSeen struct {
	id   string
	seen time.Time
	gen  uint64 // the entry's gen when queued: an older gen marks a stale slot
}

type mlfEntry struct {
	fields  map[string]string
	users   map[string]struct{}
	pending bool
	seen    time.Time
	gen     uint64
}

func newMLFCache(max int, ttl time.Duration) *mlfCache {
	return &mlfCache{max: max, ttl: ttl, entries: make(map[string]*mlfEntry)}
}

// merge folds the captures of the current line into its connection and returns the merged
// captures and whether they may be a failure (false: a nofail line).
func (c *mlfCache) merge(id string, fields map[string]string, now time.Time) (map[string]string, bool) {
	if g := fields["mlfgained"]; g != "" && fields["nofail"] == "" {
		fields["nofail"] = g
	}
	gained := fields["mlfgained"] != ""
	forget := fields["mlfforget"] != ""
	delete(fields, "mlfforget")
	user := fields["user"]

	e := c.entries[id]
	if e != nil && now.Sub(e.seen) > c.ttl {
		delete(c.entries, id)
		e = nil
	}
	var users map[string]struct{}
	var pending bool
	switch {
	case e != nil:
		if user != "" {
			e.users[user] = struct{}{}
		}
		users = e.users
		delete(e.fields, "nofail")
		delete(e.fields, "mlfgained")
		if gained {
			e.pending = false
		}
		for k, v := range fields {
			e.fields[k] = v
		}
		fields = e.fields
		pending, e.pending = e.pending, false
		e.seen = now
		c.gen++
		e.gen = c.gen
		c.order = append(c.order, mlfSeen{id, now, e.gen})
		if len(c.order) > 4*c.max+64 {
			c.compact()
		}
		if forget {
			delete(c.entries, id)
		}
	case !forget:
		users = map[string]struct{}{}
		if user != "" {
			users[user] = struct{}{}
		}
		c.put(id, &mlfEntry{fields: fields, users: users, seen: now})
	}
	if pending || len(users) > 1 {
		delete(fields, "nofail")
		delete(fields, "mlfgained")
	}
	return fields, fields["nofail"] == ""
}

// setPending marks the connection's failure as waiting for its host.
func (c *mlfCache) setPending(id string) {
	if e := c.entries[id]; e != nil {
		e.pending = true
	}
}

func (c *mlfCache) put(id string, e *mlfEntry) {
	// drop what expired, then the stalest while full
	for len(c.order) > 0 {
		o := c.order[0]
		cur := c.entries[o.id]
		if cur == nil || cur.gen != o.gen {
			c.order = c.order[1:] // forgotten, or seen again later: a stale slot
			continue
		}
		if len(c.entries) < c.max && e.seen.Sub(o.seen) <= c.ttl {
			break
		}
		delete(c.entries, o.id)
		c.order = c.order[1:]
	}
	if len(c.order) == 0 {
		c.order = nil // let the backing array go
	}
	c.gen++
	e.gen = c.gen
	c.entries[id] = e
	c.order = append(c.order, mlfSeen{id, e.seen, e.gen})
}

// compact drops the stale slots of the order queue (entries seen again since), so a few busy
// connections cannot grow it without bound.
func (c *mlfCache) compact() {
	kept := c.order[:0]
	for _, o := range c.order {
		if e := c.entries[o.id]; e != nil && e.gen == o.gen {
			kept = append(kept, o)
		}
	}
	c.order = kept
}
