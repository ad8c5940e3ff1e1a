//go:build !linux

package daemon

import (
	"log/slog"
	"runtime/debug"
)

// trimAfterStart gives back the start's heap garbage (see trim_linux.go).
func trimAfterStart(*slog.Logger) { debug.FreeOSMemory() }
