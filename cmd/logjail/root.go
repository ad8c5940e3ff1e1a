package main

import (
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
	root.AddCommand(newRegexCmd(), newCheckCmd())
	return root
}
