package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/logjail/logjail/internal/control"
	"github.com/logjail/logjail/internal/daemon"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

type serverFlags struct {
	config, socket, group, state string
	logLevel, logFormat          string
	keepOnStop                   bool
}

func newServerCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server [--config DIR] [--socket PATH] [--state DIR] [--keep-on-stop]",
		Short: "Run the daemon in the foreground (systemd runs it)",
		Long: `Run the ban daemon in the foreground: read jail.conf, jail.d/*.conf, jail.local and
jail.d/*.local from the configuration directory, start every enabled jail, and serve the client
commands on the control socket. SIGTERM or SIGINT stops it and removes every firewall rule and
chain it made, unless --keep-on-stop leaves them in place for the next start to adopt (the
systemd unit's choice: the bans then hold throughout a restart). SIGHUP reloads the
configuration (a configuration with errors is rejected and the running one stays). A jail whose
configuration is broken is reported and the others run; the server refuses to start only when
no jail can.

The bans, their history and the read position of every log file are kept in
STATE/logjail.db (SQLite). At start each jail adopts the rules the firewall still holds and
reconciles them with the database: a ban still in force stays (or is put back) until its
original end, one that ran out meanwhile goes, and a rule for no ban is removed. Logs resume
where they were left; a log rotated meanwhile is read from its start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfigDir, "configuration directory")
	fl.StringVar(&f.socket, "socket", control.DefaultSocket, "control socket")
	fl.StringVar(&f.group, "socket-group", "", "group allowed to use the control socket (mode 0660), a name from /etc/group or a number; default root only (0600)")
	fl.StringVar(&f.state, "state", "/var/lib/logjail", "state directory")
	fl.BoolVar(&f.keepOnStop, "keep-on-stop", false, "leave the firewall rules in place at stop, for the next start to adopt")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func runServer(ctx context.Context, f serverFlags) error {
	logger, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return exitCode(2, err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ln, err := control.Listen(f.socket, f.group)
	if err != nil {
		return exitCode(1, err)
	}
	defer ln.Close() // removes the socket, if it is still ours

	d := daemon.New(daemon.Options{ConfigDir: f.config, StateDir: f.state, Version: version, Logger: logger,
		KeepOnStop: f.keepOnStop})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- control.Serve(ctx, ln, d, logger) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading")
				if _, err := d.Reload(""); err != nil {
					logger.Error("reload failed", "err", err)
				}
			}
		}
	}()

	err = d.Run(ctx)
	cancel()
	if serr := <-served; serr != nil && err == nil {
		logger.Warn("control socket", "err", serr)
	}
	if err != nil {
		return exitCode(1, err)
	}
	return nil
}
