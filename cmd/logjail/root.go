package main

import (
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

const defaultConfigDir = "/etc/logjail"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "logjail",
		Short: "Ban hosts that show malicious signs in log files, fail2ban-compatible",
		Long: `logjail follows log files, matches failures with fail2ban-style filters and bans the
addresses behind them through a firewall chain it owns.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	var stopProfile func()
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(newServerCmd(), newRegexCmd(), newCheckCmd(), newReplayCmd(), newReportCmd())
	root.AddCommand(newClientCmds()...)
	return root
}
