package jail

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/filter"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), sub)
}

func healthOptions(logs *lockedBuffer) Options {
	return Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Health: HealthOptions{StaleLines: 100, StaleTime: time.Hour, BlockLines: 100, VanishAfter: time.Minute},
	}
}

func TestHealthStoppedMatching(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	logs := &lockedBuffer{}
	h.start(sshSpec(t, "auth.log"), healthOptions(logs))
	h.write("auth.log", sshLine(t0, "root", "192.0.2.1")+repeat(150, func(int) string { return noise(t0) }))
	h.waitLines(151)
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Fatalf("warnings %q after 150 lines in 10s", st.Warnings)
	}
	h.tick(time.Hour)
	st := h.j.Status()
	if !hasWarning(st, "no failure in the last 150 lines") {
		t.Fatalf("warnings %q, want the filter stopped matching", st.Warnings)
	}
	h.tick(0)
	if n := logs.count("health warning\""); n != 1 {
		t.Errorf("warning logged %d times, want once", n)
	}
	// A failure again: the warning clears at the next look.
	h.write("auth.log", sshLine(h.clk.Now(), "root", "192.0.2.1"))
	h.waitLines(152)
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Errorf("warnings %q after a failure, want none", st.Warnings)
	}
	if n := logs.count("health warning cleared"); n != 1 {
		t.Errorf("clearing logged %d times, want once", n)
	}
}

// The silent failure: failregex still matches, but the host it captures is no address.
func TestHealthBadHost(t *testing.T) {
	h := newHarness(t)
	h.write("app.log", "")
	logs := &lockedBuffer{}
	spec := sshSpec(t, "app.log")
	spec.Filter = regexFilter(t, `login failed from <HOST>$`, filter.Options{UseDNS: filter.DNSRaw})
	h.start(spec, healthOptions(logs))
	stamp := t0.Format(time.Stamp)
	line := func(host string) string { return fmt.Sprintf("%s srv1 app: login failed from %s\n", stamp, host) }
	// Addresses masked for privacy on 10 of 100 lines, and nothing else matched.
	h.write("app.log", repeat(100, func(i int) string {
		if i%10 == 0 {
			return line("client-masked")
		}
		return noise(t0)
	}))
	h.waitLines(100)
	h.tick(0)
	st := h.j.Status()
	if !hasWarning(st, "10 of the last 100 lines matched the filter but name no address") || st.BadHost != 10 {
		t.Fatalf("warnings %q, BadHost %d; want the bad-host warning", st.Warnings, st.BadHost)
	}
	if !hasWarning(st, `client-masked`) {
		t.Errorf("warning does not show an example line: %q", st.Warnings)
	}
	// A block with real addresses clears it.
	h.write("app.log", repeat(100, func(i int) string { return line(fmt.Sprintf("192.0.2.%d", i+1)) }))
	h.waitLines(200)
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Errorf("warnings %q, want none", st.Warnings)
	}
	// A few odd hosts among good ones are no warning.
	h.write("app.log", repeat(100, func(i int) string {
		if i%10 == 0 {
			return line("odd-name")
		}
		return line(fmt.Sprintf("198.51.100.%d", i+1))
	}))
	h.waitLines(300)
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Errorf("warnings %q with 10%% odd hosts, want none", st.Warnings)
	}
}

func TestHealthNoDate(t *testing.T) {
	h := newHarness(t)
	h.write("app.log", "")
	spec := sshSpec(t, "app.log")
	spec.Filter = regexFilter(t, `login failed from <HOST>$`, filter.Options{})
	h.start(spec, healthOptions(&lockedBuffer{}))
	h.write("app.log", repeat(100, func(i int) string { return fmt.Sprintf("app: login failed from 192.0.2.%d\n", i+1) }))
	h.waitLines(100)
	h.tick(0)
	st := h.j.Status()
	if !hasWarning(st, "100 of the last 100 lines have no date") || st.LinesNoDate != 100 {
		t.Fatalf("warnings %q, LinesNoDate %d", st.Warnings, st.LinesNoDate)
	}
	h.write("app.log", repeat(100, func(i int) string {
		return fmt.Sprintf("%s app: login failed from 192.0.2.%d\n", t0.Format(time.Stamp), i+1)
	}))
	h.waitLines(200)
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Errorf("warnings %q, want none", st.Warnings)
	}
}

func TestHealthVanished(t *testing.T) {
	h := newHarness(t)
	h.write("auth.log", "")
	h.start(sshSpec(t, "auth.log"), healthOptions(&lockedBuffer{}))
	mustDo(t, os.Remove(h.path("auth.log")))
	h.waitFor("file gone", func(s Status) bool { return !s.Files[0].Exists })
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Fatalf("warnings %q right after the file went (a rotation looks the same)", st.Warnings)
	}
	h.tick(time.Minute)
	if st := h.j.Status(); !hasWarning(st, "is gone") {
		t.Fatalf("warnings %q, want the log is gone", st.Warnings)
	}
	h.write("auth.log", sshLine(t0, "root", "192.0.2.1"))
	h.waitFor("file back", func(s Status) bool { return s.Files[0].Exists })
	h.tick(0)
	if st := h.j.Status(); len(st.Warnings) != 0 {
		t.Errorf("warnings %q after the file came back", st.Warnings)
	}
}
