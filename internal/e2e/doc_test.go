// Package e2e holds logjail's whole-daemon end-to-end tests: the real binary (`logjail
// server`) run in private network namespaces against real netfilter, the demo web server
// (cmd/demoweb) as the protected site, driven with the CLI as an admin would, and judged
// through the network (the attacker's TCP connections fail, the bystander's still work) and
// through iptables-save of the namespace.
//
// They need root and iproute2 and skip without them, unless LOGJAIL_E2E=1 (CI) makes a
// missing prerequisite a failure:
//
//	sudo LOGJAIL_E2E=1 go test -race -v ./internal/e2e/
//
// The package has test files only; the harness is in harness_linux_test.go.
package e2e
