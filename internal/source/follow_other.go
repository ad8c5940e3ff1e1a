//go:build !linux

package source

import (
	"fmt"
	"runtime"
	"syscall"
)

// openFlags: see follow_linux.go.
const openFlags = syscall.O_NONBLOCK

func newNotifier(string, chan<- struct{}) (notifier, error) {
	return nil, fmt.Errorf("%w: %v on %s", ErrWatchUnsupported, WatchInotify, runtime.GOOS)
}
