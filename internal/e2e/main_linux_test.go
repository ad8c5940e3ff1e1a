//go:build linux

package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

const e2eEnv = "LOGJAIL_E2E"

// defaultParallel is the -parallel used when the command line does not set one. The tests
// spend their time waiting (for the daemon, for bans to expire), not computing; the default
// (GOMAXPROCS) would run them two at a time on a small CI machine.
const defaultParallel = "6"

// built holds the binaries under test, built once per package run by the first test that needs
// them (a test that skips builds nothing). TestMain removes them.
var built struct {
	once             sync.Once
	dir              string
	logjail, demoweb string
	race             bool
	err              error
}

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", defaultParallel)
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// requireE2E skips, or with LOGJAIL_E2E=1 fails, when the test cannot run; then it makes sure
// the binaries are built.
func requireE2E(t *testing.T) {
	t.Helper()
	if os.Getenv(e2eEnv) != "1" && testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	if os.Geteuid() != 0 {
		missing(t, "not root (network namespaces and iptables need root)")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing(t, bin+" not found in PATH")
		}
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		missing(t, fmt.Sprintf("ip netns does not work: %v: %s", err, bytes.TrimSpace(out)))
	}
	build(t)
}

func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv(e2eEnv) == "1" {
		t.Fatalf("%s=1, but %s", e2eEnv, what)
	}
	t.Skipf("skipping end-to-end test: %s (with %s=1 this fails)", what, e2eEnv)
}

// build builds bin/logjail and demoweb into a temporary directory, once. When this test
// binary has the race detector, so do they: a data race in the daemon then fails the test
// that saw it (daemon.check).
func build(t *testing.T) {
	t.Helper()
	built.once.Do(func() {
		start := time.Now()
		goBin, err := goTool()
		if err != nil {
			built.err = err
			return
		}
		root, err := repoRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "logjail-e2e-bin-"); err != nil {
			built.err = err
			return
		}
		built.race = raceEnabled()
		built.logjail = filepath.Join(built.dir, "logjail")
		built.demoweb = filepath.Join(built.dir, "demoweb")
		for _, b := range []struct{ out, pkg string }{{built.logjail, "./cmd/logjail"}, {built.demoweb, "./cmd/demoweb"}} {
			args := []string{"build", "-o", b.out}
			if built.race {
				args = append(args, "-race")
			}
			cmd := exec.Command(goBin, append(args, b.pkg)...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("%s %v: %v\n%s", goBin, cmd.Args[1:], err, out)
				return
			}
		}
		fmt.Fprintf(os.Stderr, "e2e: built logjail and demoweb (race detector: %v) in %v\n", built.race, time.Since(start).Round(time.Millisecond))
	})
	if built.err != nil {
		t.Fatalf("building the binaries under test: %v", built.err)
	}
}

// goTool is the go command of the toolchain that built this test, else the one in PATH
// (sudo's PATH often has none).
func goTool() (string, error) {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command: not in %s/bin and not in PATH", runtime.GOROOT())
	}
	return p, nil
}

// repoRoot is the module's root: the tests run in internal/e2e.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root not found: %w", err)
	}
	return root, nil
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
