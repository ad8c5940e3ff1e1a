//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/control"
)

// TestReloadBrokenConfigKeepsJails: two jails run (wordpress, http-flood). A broken file
// (jail.d/broken.local: maxretry = five) and a SIGHUP: the reload is refused and logged, the
// daemon and both jails keep running with their old settings and chains, and a flood is still
// banned. `logjail reload` says which file and line, with a non-zero exit. With the file
// removed, reload succeeds and keeps the unchanged jails and their ban; a good change (a
// SIGHUP with maxretry = 3) restarts the jail with its ban kept.
func TestReloadBrokenConfigKeepsJails(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	var conf string
	tp, d, log := webSetup(t, func(log string) map[string]string {
		// In jail.local, which jail.d/*.local files override (an e2e.local would be read
		// after broken.local, and its maxretry would win).
		return map[string]string{"jail.local": wordpressJail(log, 5, "1m", "1h") + fmt.Sprintf(`
[http-flood]
enabled = true
logpath = %s
`, log)}
	})
	conf = d.conf
	d.waitJails("wordpress", "http-flood")
	d.waitFollowing("http-flood", log)
	tp.wantChains(t, "wordpress", "http-flood")

	broken := filepath.Join(conf, "jail.d", "broken.local")
	writeFile(t, broken, "[wordpress]\nmaxretry = five\n")
	if err := d.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the SIGHUP reload to be refused", func() (bool, string) {
		return strings.Contains(d.logs.String(), "reload failed"), "no 'reload failed' in the daemon's log"
	})
	if logs := d.logs.String(); !strings.Contains(logs, broken+":2") {
		t.Errorf("the daemon's log does not name %s:2", broken)
	}
	d.alive("after SIGHUP with a broken file")
	st := d.status()
	var names []string
	for _, j := range st.Jails {
		names = append(names, j.Name)
		if j.Name == "wordpress" && j.MaxRetry != 5 {
			t.Errorf("wordpress maxretry %d after a refused reload, want 5", j.MaxRetry)
		}
	}
	if !slices.Equal(names, []string{"http-flood", "wordpress"}) || len(st.Broken) != 0 {
		t.Errorf("after a refused reload: jails %v, broken %+v; want http-flood and wordpress running", names, st.Broken)
	}
	tp.wantChains(t, "wordpress", "http-flood")

	o, e, code := d.cli("reload")
	if code == 0 || !strings.Contains(e, broken+":2:") || !strings.Contains(e, "five") {
		t.Errorf("logjail reload with %s: exit %d, %q%q; want non-zero and %s:2: ... five", broken, code, o, e, broken)
	}
	d.alive("after logjail reload with a broken file")

	if n, err := tp.atk.flood(t, ipv4, 200, 10*time.Second); err == nil {
		t.Fatalf("after the refused reload, the attacker's flood was answered %d times and never cut off", n)
	}
	d.waitBan("wordpress", hostTarget(atk4), 5*time.Second)
	tp.atk.waitRefused(t, ipv4, "banned after the refused reload")
	tp.bys.wantServed(t, ipv4, "attacker banned")

	// Fixed: reload succeeds, nothing changed, the ban stays.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	var rep control.ReloadReply
	if err := d.jsonCLI(&rep, "reload"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Unchanged, []string{"http-flood", "wordpress"}) || len(rep.Restarted)+len(rep.Started)+len(rep.Stopped) != 0 {
		t.Errorf("reload after the fix: %+v, want both jails unchanged", rep)
	}
	if _, ok := d.ban("wordpress", hostTarget(atk4)); !ok {
		t.Errorf("the ban is gone after a reload that changed nothing: %+v", d.banned())
	}
	tp.atk.wantRefused(t, ipv4, "still banned after the reload")

	// A good change through SIGHUP: the jail restarts with it, and keeps its ban.
	writeFile(t, filepath.Join(conf, "jail.d", "fix.local"), "[wordpress]\nmaxretry = 3\n")
	if err := d.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "wordpress restarted with maxretry 3", func() (bool, string) {
		j := d.jail("wordpress")
		return j.MaxRetry == 3, fmt.Sprintf("maxretry %d", j.MaxRetry)
	})
	if _, ok := d.ban("wordpress", hostTarget(atk4)); !ok {
		t.Errorf("the ban is gone after the jail restarted: %+v", d.banned())
	}
	tp.atk.wantRefused(t, ipv4, "still banned after the jail restarted")
	tp.wantChains(t, "wordpress", "http-flood")
}
