//go:build linux

package daemon

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimAfterStart gives back what only the start needed, once every jail runs: the heap garbage
// of reading the configuration and compiling the filters, and the pages of the program's own
// code and data that the start touched and the steady state does not (the configuration
// parser, SQLite's integrity check and schema code, the filter compiler). The code pages are
// advised out (MADV_PAGEOUT): clean, file-backed pages, dropped from the resident set and read
// back from the page cache on the next use, so the daemon's RSS is what its running loop uses.
// A kernel without MADV_PAGEOUT (before 5.4) refuses it; nothing else changes then.
func trimAfterStart(log *slog.Logger) {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	var advised, failed int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00c4e000 r-xp 00000000 fd:01 1234   /usr/local/bin/logjail
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The raw call: these addresses are not Go memory, and unix.Madvise wants a slice.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); errno != 0 {
			failed++
			continue
		}
		advised += int(end - start)
	}
	log.Debug("start-up memory given back", "advised_bytes", advised, "failed_ranges", failed)
}
