package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// env owns everything a run makes outside its own memory: network namespaces and child
// processes. close removes all of it, in reverse order, and is safe to call twice.
type env struct {
	prefix string // namespace names start with it
	selfNS string // readlink /proc/self/ns/net of ljbench (the host's namespace)

	mu    sync.Mutex
	seq   int
	ns    []string // made, not yet deleted
	procs []*proc  // started, maybe still running
}

func newEnv(prefix string) (*env, error) {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("read own network namespace: %w", err)
	}
	return &env{prefix: prefix, selfNS: self}, nil
}

// newNS makes a network namespace with only lo, up, and checks that it is not the host's.
func (e *env) newNS(tag string) (string, error) {
	e.mu.Lock()
	e.seq++
	name := fmt.Sprintf("%s-%d-%s", e.prefix, e.seq, tag)
	e.mu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	e.mu.Lock()
	e.ns = append(e.ns, name)
	e.mu.Unlock()
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip -n %s link set lo up: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command("ip", "netns", "exec", name, "readlink", "/proc/self/ns/net").Output()
	if err != nil {
		return "", fmt.Errorf("ip netns exec %s readlink: %w", name, err)
	}
	if strings.TrimSpace(string(out)) == e.selfNS {
		return "", fmt.Errorf("namespace %s is the host's network namespace: refusing to go on", name)
	}
	return name, nil
}

// delNS kills whatever still runs in a namespace this run made (only processes this run
// started can be there), then deletes it; deleting it removes its whole firewall. The name
// leaves the list only once it is gone, so that a concurrent close (a second Ctrl-C) still
// sees it.
func (e *env) delNS(name string) error {
	e.mu.Lock()
	i := indexOf(e.ns, name)
	e.mu.Unlock()
	if i < 0 {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	var err error
	for try := 0; try < 20; try++ {
		var out []byte
		out, err = exec.Command("ip", "netns", "delete", name).CombinedOutput()
		if _, serr := os.Stat("/run/netns/" + name); err == nil || errors.Is(serr, fs.ErrNotExist) {
			err = nil
			break
		}
		err = fmt.Errorf("ip netns delete %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	e.mu.Lock()
	if i := indexOf(e.ns, name); i >= 0 {
		e.ns = append(e.ns[:i], e.ns[i+1:]...)
	}
	e.mu.Unlock()
	return nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// close stops every process still running and deletes every namespace still there.
func (e *env) close() error {
	e.mu.Lock()
	procs := append([]*proc(nil), e.procs...)
	e.procs = nil
	nss := append([]string(nil), e.ns...)
	e.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(5 * time.Second)
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if err := e.delNS(nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// proc is a child process: a daemon, or nft monitor.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited
	err  error         // its exit status, once done
}

// start runs argv inside namespace ns (ip netns exec replaces itself with the command, so the
// pid is the command's), with stdout and stderr as given (nil: discarded). The child gets its
// own process group, so that a Ctrl-C reaches ljbench only, which then stops it in order; and
// SIGKILL if ljbench dies without cleaning up.
func (e *env) start(name, ns string, argv []string, extraEnv []string, stdout, stderr *os.File) (*proc, error) {
	full := append([]string{"netns", "exec", ns}, argv...)
	cmd := exec.Command("ip", full...)
	cmd.Env = append(os.Environ(), extraEnv...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// startPipe is start with stdout read through a pipe.
func (e *env) startPipe(name, ns string, argv []string, stderr *os.File) (*proc, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	p, err := e.start(name, ns, argv, nil, w, stderr)
	w.Close()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return p, r, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// forget drops a stopped process from the env's list.
func (e *env) forget(p *proc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.procs {
		if x == p {
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			return
		}
	}
}

// inNS runs a short command inside a namespace and returns its output.
func inNS(ctx context.Context, ns string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
