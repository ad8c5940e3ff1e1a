module github.com/logjail/logjail

go 1.24.0

require (
	github.com/coreos/go-iptables v0.8.0
	github.com/dlclark/regexp2 v1.12.0
	github.com/google/go-cmp v0.7.0
	github.com/spf13/cobra v1.10.2
	golang.org/x/sys v0.33.0
	gopkg.in/ini.v1 v1.67.3
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
