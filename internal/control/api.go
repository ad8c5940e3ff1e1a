// Package control is the daemon's local API: HTTP with JSON bodies over a unix socket. The
// server side serves a Service (the daemon implements it); Client is what the CLI uses.
// Both sides share the types in this file, which are also the shape of every `--json` output.
package control

import "time"

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/logjail/logjail.sock"

// Service is what the daemon offers on the socket. Every method is safe for concurrent use.
// Errors that are the caller's fault wrap ErrBadRequest or ErrNotFound (see types.go), so the
// server can answer 400 or 404; anything else is a 500.
type Service interface {
	Status(jail string) (*StatusReply, error)
	Banned(jail string) (*BannedReply, error)
	Ban(req BanRequest) (*BanReply, error)
	Unban(req UnbanRequest) (*UnbanReply, error)
	Explain(addr string) (*ExplainReply, error)
	Reload(jail string) (*ReloadReply, error)
	Stop() error
}

// StatusReply answers `logjail status [JAIL]`.
type StatusReply struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Config  string    `json:"config"` // the configuration directory
	// Starting: the daemon answers, but its first configuration is not applied yet (jails
	// still start, reading their bans back and reconciling the firewall): Jails is partial.
	Starting bool `json:"starting,omitempty"`
	// State is the state database (bans, history, log positions); StateError says why there
	// is none (bans then do not survive a restart).
	State      string       `json:"state,omitempty"`
	StateError string       `json:"state_error,omitempty"`
	Jails      []JailStatus `json:"jails"` // sorted by name; only the asked jail when one was named
	// Broken lists the jails that are configured and enabled but not running, with why.
	Broken []BrokenJail `json:"broken,omitempty"`
}

// BrokenJail is an enabled jail that could not start.
type BrokenJail struct {
	Name   string   `json:"name"`
	Errors []string `json:"errors"` // "file:line: message"
}

// JailStatus is one running jail.
type JailStatus struct {
	Name         string       `json:"name"`
	Filter       string       `json:"filter"`
	Files        []FileStatus `json:"files"`
	LinesRead    int64        `json:"lines_read"`
	LinesNoDate  int64        `json:"lines_no_date"`
	LinesSkipped int64        `json:"lines_skipped"` // garbage: cut, too old
	LinesInvalid int64        `json:"lines_invalid"` // invalid UTF-8 or NUL bytes (matched all the same)
	Failures     int64        `json:"failures"`      // failures counted in windows
	IgnoredUser  int64        `json:"ignored_user"`  // failures dropped by ignoreuser
	Tracked      int          `json:"tracked"`       // addresses with failures in the window
	Evicted      uint64       `json:"evicted"`       // addresses evicted by the tracking cap
	LastFailure  *time.Time   `json:"last_failure,omitempty"`
	Banned       int          `json:"banned"`       // in force now
	TotalBanned  int64        `json:"total_banned"` // since start
	Refused      int64        `json:"refused"`      // ban orders refused by the ignore list
	// AlreadyBanned counts the times an address reached maxretry again while banned, when its
	// ban would not change: lines in flight, a log read again, or a ban that does not reach the
	// traffic the log shows (a proxy in front, the wrong port).
	AlreadyBanned int64 `json:"already_banned"`
	// Repeat counts the bans in force of repeat offenders (banned before); Neighbourhoods the
	// prefixes banned since start because enough of their addresses were (subnet.*).
	Repeat         int   `json:"repeat"`
	Neighbourhoods int64 `json:"neighbourhoods"`
	// NextUnban is when the next ban in force ends (nil: none, or only permanent ones).
	NextUnban *time.Time `json:"next_unban,omitempty"`
	MaxRetry  int        `json:"maxretry"`
	FindTime  Duration   `json:"findtime"`
	BanTime   Duration   `json:"bantime"`            // -1: permanent
	Warnings  []string   `json:"warnings,omitempty"` // health: stopped matching, no dates, log gone
	Errors    []string   `json:"errors,omitempty"`   // action failures, unreadable files
}

// FileStatus is one followed log file.
type FileStatus struct {
	Path        string `json:"path"`
	Exists      bool   `json:"exists"`
	Lines       int64  `json:"lines"`
	Bytes       int64  `json:"bytes"`
	Offset      int64  `json:"offset"`
	Rotations   int64  `json:"rotations"`
	Truncations int64  `json:"truncations"`
	CutLines    int64  `json:"cut_lines"`
	Error       string `json:"error,omitempty"`
}

// Ban is one ban in force.
type Ban struct {
	Jail     string     `json:"jail"`
	Target   string     `json:"target"` // address, or prefix in CIDR form
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end,omitempty"` // nil: permanent
	Manual   bool       `json:"manual"`
	Failures int        `json:"failures,omitempty"`
	Lines    []string   `json:"lines,omitempty"` // the log lines that caused it
	Applied  bool       `json:"applied"`         // the kernel rule is in
	Error    string     `json:"error,omitempty"` // the last action error for it
	Count    int        `json:"count,omitempty"` // times banned, this ban included (repeat offenders)
	// Neighbourhood: a prefix banned because enough of its addresses were (subnet.*).
	Neighbourhood bool `json:"neighbourhood,omitempty"`
}

// BannedReply answers `logjail banned [JAIL]`.
type BannedReply struct {
	Bans []Ban `json:"bans"` // sorted by jail, then start
}

// BanRequest is `logjail ban JAIL ADDR [--for D] [--force]`.
type BanRequest struct {
	Jail   string   `json:"jail"`
	Target string   `json:"target"`        // address or CIDR prefix
	For    Duration `json:"for,omitempty"` // 0: the jail's bantime; -1: permanent
	Force  bool     `json:"force,omitempty"`
}

// BanReply is the ban made.
type BanReply struct {
	Ban Ban `json:"ban"`
}

// UnbanRequest is `logjail unban [JAIL] ADDR` or `logjail unban [JAIL] --all`.
type UnbanRequest struct {
	Jail   string `json:"jail,omitempty"`   // "": every jail
	Target string `json:"target,omitempty"` // address or prefix; empty with All
	All    bool   `json:"all,omitempty"`
}

// UnbanReply lists the bans lifted.
type UnbanReply struct {
	Unbanned []Ban `json:"unbanned"`
}

// ExplainReply answers `logjail explain ADDR`.
type ExplainReply struct {
	Addr  string        `json:"addr"`
	Jails []JailExplain `json:"jails"`
}

// JailExplain is what one jail knows about an address.
type JailExplain struct {
	Jail       string      `json:"jail"`
	Failures   int         `json:"failures"` // counted in the window now
	MaxRetry   int         `json:"maxretry"`
	FindTime   Duration    `json:"findtime"`
	Times      []time.Time `json:"times,omitempty"`
	Lines      []string    `json:"lines,omitempty"`     // the lines that counted (most recent last)
	ResetsAt   *time.Time  `json:"resets_at,omitempty"` // when the window forgets the newest failure
	Ignored    bool        `json:"ignored"`
	IgnoredWhy string      `json:"ignored_why,omitempty"`
	Ban        *Ban        `json:"ban,omitempty"`
}

// ReloadReply answers `logjail reload [JAIL]`.
type ReloadReply struct {
	Started   []string `json:"started,omitempty"`
	Stopped   []string `json:"stopped,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}
