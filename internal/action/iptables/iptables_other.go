//go:build !linux

package iptables

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/logjail/logjail/internal/action"
)

// Backend is not available outside Linux; every method fails with
// action.ErrUnsupportedPlatform.
type Backend struct{}

var (
	_ action.Backend = (*Backend)(nil)
	_ action.Keeper  = (*Backend)(nil)
	_ action.Lister  = (*Backend)(nil)
)

func errPlatform() error { return fmt.Errorf("%w: iptables", action.ErrUnsupportedPlatform) }

// New fails: iptables exists only on Linux.
func New(opts Options, logger *slog.Logger) (*Backend, error) { return nil, errPlatform() }

// Name returns "iptables".
func (b *Backend) Name() string { return "iptables" }

// Start fails with action.ErrUnsupportedPlatform.
func (b *Backend) Start(ctx context.Context) error { return errPlatform() }

// Ban fails with action.ErrUnsupportedPlatform.
func (b *Backend) Ban(ctx context.Context, t action.Target) error { return errPlatform() }

// Unban fails with action.ErrUnsupportedPlatform.
func (b *Backend) Unban(ctx context.Context, t action.Target) error { return errPlatform() }

// Stop fails with action.ErrUnsupportedPlatform.
func (b *Backend) Stop(ctx context.Context) error { return errPlatform() }

// StartKeep fails with action.ErrUnsupportedPlatform.
func (b *Backend) StartKeep(ctx context.Context) error { return errPlatform() }

// StopKeep fails with action.ErrUnsupportedPlatform.
func (b *Backend) StopKeep(ctx context.Context) error { return errPlatform() }

// List fails with action.ErrUnsupportedPlatform.
func (b *Backend) List(ctx context.Context) ([]action.Target, error) { return nil, errPlatform() }
