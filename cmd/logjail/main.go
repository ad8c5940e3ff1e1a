// Command logjail is a ban daemon that speaks fail2ban's configuration language: it follows logs,
// counts failures per address and bans through the firewall. This binary is the daemon, its client
// and its tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err == nil {
		return
	}
	if msg := err.Error(); strings.HasPrefix(msg, "logjail ") {
		fmt.Fprintln(os.Stderr, msg) // "logjail is not running (...)": no "logjail: " in front
	} else {
		fmt.Fprintln(os.Stderr, "logjail:", msg)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(2)
}

// exitError carries the exit status a command wants besides its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(code int, err error) error { return &exitError{code: code, err: err} }
