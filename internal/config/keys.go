package config

import "sort"

// keyKind is how a jail key's value is read.
type keyKind int

const (
	kindText     keyKind = iota // free text, used as it is (often by actions)
	kindBool                    // true/false, yes/no, on/off, 1/0
	kindInt                     // decimal integer
	kindDuration                // ParseDuration
	kindWords                   // list split on spaces, commas and new lines
	kindLines                   // one item per line
	kindRegex                   // one regex per line (filter keys a jail may override)
	kindRef                     // name[options]
	kindRefs                    // list of name[options]
)

// jailKeyTable lists every key a jail section may set: fail2ban's own (client/jailreader.py,
// client/filterreader.py, server/transmitter.py), the parameters jail.conf and the stock
// actions use, and logjail's additions. It is the one place where jail keys are declared;
// unknown keys are reported with the nearest of these.
func jailKeyTable() map[string]keyKind {
	return map[string]keyKind{
		// fail2ban jail options
		"enabled":              kindBool,
		"filter":               kindRef,
		"logpath":              kindLines,
		"logencoding":          kindText,
		"logtimezone":          kindText,
		"backend":              kindRef,
		"maxretry":             kindInt,
		"maxmatches":           kindInt,
		"findtime":             kindDuration,
		"bantime":              kindDuration,
		"bantime.increment":    kindBool,
		"bantime.factor":       kindText,
		"bantime.formula":      kindText,
		"bantime.multipliers":  kindWords,
		"bantime.maxtime":      kindDuration,
		"bantime.rndtime":      kindDuration,
		"bantime.overalljails": kindBool,
		"ignoreip":             kindWords,
		"ignoreself":           kindBool,
		"ignorecommand":        kindText,
		"ignorecache":          kindText,
		"action":               kindRefs,
		// filter options a jail may override
		"usedns":       kindText,
		"prefregex":    kindRegex,
		"failregex":    kindRegex,
		"ignoreregex":  kindRegex,
		"maxlines":     kindInt,
		"datepattern":  kindRegex,
		"journalmatch": kindLines,
		"mode":         kindText,
		// parameters of jail.conf's actions and the stock action.d files
		"banaction":           kindRef,
		"banaction_allports":  kindRef,
		"port":                kindText,
		"protocol":            kindText,
		"chain":               kindText,
		"blocktype":           kindText,
		"returntype":          kindText,
		"name":                kindText,
		"mta":                 kindText,
		"destemail":           kindText,
		"sender":              kindText,
		"sendername":          kindText,
		"lockingopt":          kindText,
		"fail2ban_agent":      kindText,
		"action_":             kindRefs,
		"action_mw":           kindRefs,
		"action_mwl":          kindRefs,
		"action_xarf":         kindRefs,
		"action_cf_mwl":       kindRefs,
		"action_blocklist_de": kindRefs,
		"action_abuseipdb":    kindRefs,
		// logjail
		"ignoreuser":      kindWords,
		"subnet.maxhosts": kindInt,
		"subnet.findtime": kindDuration,
		"subnet.prefix4":  kindInt,
		"subnet.prefix6":  kindInt,
		"dbpurgeage":      kindDuration,
		"maxtracked":      kindInt,
	}
}

// builtinDefaults are the values a jail gets for a key set nowhere: what fail2ban's stock
// jail.conf would give (and logjail's own defaults). They sit below [DEFAULT] and can be
// referenced as %(name)s like any DEFAULT value. usedns is absent on purpose: a filter's
// usedns applies when the jail configuration sets none, and "no" only after that.
func builtinDefaults(dir string) map[string]string {
	return map[string]string{
		"enabled":              "false",
		"filter":               "%(__name__)s",
		"backend":              "auto",
		"maxretry":             "5",
		"maxmatches":           "%(maxretry)s",
		"findtime":             "10m",
		"bantime":              "10m",
		"bantime.increment":    "false",
		"bantime.factor":       "1",
		"bantime.multipliers":  "",
		"bantime.maxtime":      "",
		"bantime.rndtime":      "",
		"bantime.overalljails": "false",
		"ignoreself":           "true",
		"ignoreip":             "",
		"ignorecommand":        "",
		"logencoding":          "auto",
		"port":                 "0:65535",
		"protocol":             "tcp",
		"chain":                "INPUT",
		"blocktype":            "REJECT",
		"banaction":            "iptables-multiport",
		"banaction_allports":   "iptables-allports",
		"action":               `%(banaction)s[port="%(port)s", protocol="%(protocol)s", chain="%(chain)s"]`,
		"ignoreuser":           "",
		"subnet.maxhosts":      "0",
		"subnet.findtime":      "%(findtime)s",
		"subnet.prefix4":       "24",
		"subnet.prefix6":       "64",
		"dbpurgeage":           "30d", // fail2ban: 1d; repeat offenders need a longer history
		"maxtracked":           "100000",
		// fail2ban adds these to [DEFAULT] before it reads the jails.
		"fail2ban_version":  "1.0.2",
		"fail2ban_confpath": dir,
	}
}

// nearest returns the candidate closest to key by edit distance (Levenshtein with swaps), if it is close enough to be
// a plausible typo.
func nearest(key string, candidates []string) (string, bool) {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(key, c)
		if bestD < 0 || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	// A third of the name may be wrong, at least one letter, but never all of it.
	n := len([]rune(key))
	limit := max(n/3, 1)
	if bestD < 0 || bestD > limit || bestD >= n {
		return "", false
	}
	return best, true
}

// editDistance is the optimal string alignment distance: insertions, deletions,
// substitutions and swaps of two neighbours ("prot" for "port") cost one each.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
