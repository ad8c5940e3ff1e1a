package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux
// architecture Go supports (it is not HZ, the kernel's internal tick).
const clockTick = 10 * time.Millisecond

// cpuTimes are a process's CPU times from /proc/PID/stat.
type cpuTimes struct {
	Self     time.Duration // utime + stime: the process's own threads
	Children time.Duration // cutime + cstime: children it waited for (iptables-restore, a shell)
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{Self: c.Self - o.Self, Children: c.Children - o.Children}
}

func readCPU(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	return parseStat(string(b))
}

// parseStat reads utime, stime, cutime and cstime (fields 14 to 17) of a /proc/PID/stat line.
// The command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
// the fields are counted from the last ')'.
func parseStat(s string) (cpuTimes, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("stat: no ')' in %q", s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return cpuTimes{}, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	var v [4]int64
	for k := range v {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("stat field %d: %w", 14+k, err)
		}
		v[k] = n
	}
	return cpuTimes{
		Self:     time.Duration(v[0]+v[1]) * clockTick,
		Children: time.Duration(v[2]+v[3]) * clockTick,
	}, nil
}

// memStatus is what /proc/PID/status says of a process's memory, in bytes.
type memStatus struct {
	RSS, HWM, Anon int64
	Threads        int
}

func readMem(pid int) (memStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, err
	}
	defer f.Close()
	var m memStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		case "RssAnon":
			m.Anon = n << 10
		case "Threads":
			m.Threads = int(n)
		}
	}
	return m, sc.Err()
}

// sysSnap is the machine's CPU use from /proc/stat and ljbench's own from /proc/self/stat,
// to tell how busy the rest of the machine was during a run: the machine here is shared.
type sysSnap struct {
	at          time.Time
	busy, steal time.Duration // every CPU: user+nice+system+irq+softirq(+steal); steal alone
	self        cpuTimes      // ljbench's
}

func snapSys() sysSnap {
	s := sysSnap{at: time.Now()}
	s.self, _ = readCPU(os.Getpid())
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[1+i], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	s.busy = time.Duration(v[0]+v[1]+v[2]+v[5]+v[6]+v[7]) * clockTick
	s.steal = time.Duration(v[7]) * clockTick
	return s
}

// otherLoad is how many CPUs, on average between a and b, went to anything but the daemon
// (its own and its children's time, in d) and ljbench; and how many the hypervisor stole.
func otherLoad(a, b sysSnap, d cpuTimes) (other, steal float64) {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 || a.busy == 0 {
		return 0, 0
	}
	mine := b.self.sub(a.self)
	o := b.busy - a.busy - d.Self - d.Children - mine.Self - mine.Children
	return max(o.Seconds()/wall, 0), (b.steal - a.steal).Seconds() / wall
}
