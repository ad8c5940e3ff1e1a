//go:build linux

package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/control"
)

// TestStatusWhileStarting: clients ask for status from the moment the daemon's process starts
// (a monitoring script, `systemctl start logjail && logjail status`). Every answer is either
// "not running" or a valid status whose start time is the daemon's; the daemon has no data
// race (with -race, the daemon is built with the race detector and daemon.check fails the test
// on one).
//
// It fails today: control.Serve answers from cmd/logjail/server.go before Daemon.Run has set
// d.started (internal/daemon/daemon.go, first line of Run), which Status reads without a lock
// (internal/daemon/service.go, Status): a data race, and a status that says the daemon started
// at 0001-01-01.
func TestStatusWhileStarting(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	tp := newTopo(t)
	log := filepath.Join(t.TempDir(), "access.log")
	writeFile(t, log, "")
	d := newDaemon(t, tp, newConfig(t, map[string]string{"jail.d/e2e.local": wordpressJail(log, 5, "1m", "1h")}))
	for round := 1; round <= 5; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers int
			bad     []string
		)
		launched := time.Now()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := control.NewClient(d.sock)
				for ctx.Err() == nil {
					st, err := c.Status("")
					mu.Lock()
					switch {
					case errors.Is(err, control.ErrNotRunning):
					case err != nil:
						bad = append(bad, "error: "+err.Error())
					case st.Started.Before(launched.Add(-time.Second)) || st.Started.After(time.Now()):
						bad = append(bad, "started "+st.Started.String())
					default:
						answers++
					}
					mu.Unlock()
				}
			}()
		}
		d.start("wordpress")
		time.Sleep(100 * time.Millisecond)
		cancel()
		wg.Wait()
		if len(bad) > 0 {
			t.Errorf("round %d: %d bad status answers while the daemon started (launched %v), the first: %s", round, len(bad), launched.Format(time.RFC3339Nano), bad[0])
		}
		if answers == 0 {
			t.Errorf("round %d: no status answered", round)
		}
		if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		d.stopped(20 * time.Second)
	}
}
