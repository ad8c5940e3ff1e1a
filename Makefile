# logjail — build, test, benchmark, install.
GO       ?= go
PREFIX   ?= /usr/local
SYSCONF  ?= /etc/logjail
BIN      := bin/logjail

.PHONY: all build test unit lint fuzz bench bench-go bench-regex install uninstall demo clean

all: build

# A static binary (no cgo): no libc mapped in the daemon, whose idle RSS it halves here. Groups
# are then read from /etc/group (the socket group may be given as a number for NSS/LDAP groups)
# and names resolved by Go's own resolver (/etc/hosts, /etc/resolv.conf).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/logjail

# The README's test command (run as root): dependencies, lint, every test with the race
# detector (the fail2ban comparison and the network-namespace tests included), then each fuzz
# target for a short fixed time.
test: deps lint unit fuzz

deps:
	@scripts/install-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# LOGJAIL_F2B: compare with Debian's fail2ban; LOGJAIL_E2E: the network-namespace tests (root)
# must run, not skip.
unit:
	LOGJAIL_F2B=1 LOGJAIL_E2E=1 $(GO) test -race -timeout 15m ./...

# Each fuzz target runs for a fixed number of inputs (about 10 s here), not a fixed time: with a
# time limit, go1.26's fuzz coordinator can fail a run that found nothing ("context deadline
# exceeded", golang/go#75804).
FUZZ_TARGETS ?= config:FuzzParse:150000 config:FuzzLoad:50000 logtime:FuzzFind:15000 \
                logtime:FuzzNew:100000 source:FuzzUtmpReader:300000 filter:FuzzMatcher:50000 \
                window:FuzzWindow:10000 rx:FuzzAgainstRegexp:200000 \
                logtime:FuzzTimeCache:2000

fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
	  echo "fuzz $$fn ($$n inputs)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $${n}x -fuzzminimizetime 3s -timeout 5m ./internal/$$pkg || exit 1; \
	done

bench: build bench-go bench-regex bench-daemon

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

bench-regex: build
	scripts/bench-regex.sh

# The whole daemon against fail2ban-server, in network namespaces (root: it runs sudo when not
# root): ban latency, ingest, idle RSS, memory per tracked address, start-up with 100,000 bans
# in force; about eight minutes.
# QUICK=1 for a smoke run; BENCH_ARGS passes ljbench flags (BENCH_ARGS="-only startup -fail2ban=false").
# Tables and RESULT lines in bench.out/bench-daemon.{txt,json}.
BENCH_ARGS ?=
.PHONY: bench-daemon
bench-daemon: build
	$(GO) build -trimpath -o bin/ljbench ./cmd/ljbench
	@if [ "$$(id -u)" -eq 0 ]; then scripts/bench-daemon.sh $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS); \
	elif command -v sudo >/dev/null; then echo "sudo scripts/bench-daemon.sh $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS)"; sudo scripts/bench-daemon.sh $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS); \
	else echo "bench-daemon needs root (network namespaces, iptables): run scripts/bench-daemon.sh as root" >&2; exit 1; fi

# Install: the binary, the shipped configuration and the systemd unit. The shipped .conf files are
# ours and are overwritten on every install, like fail2ban's; an admin's changes live in *.local
# files, which install never writes. The unit goes where systemd looks for the units of locally
# installed software ($(PREFIX)/lib/systemd/system: /usr/local/lib/systemd/system by default;
# /lib/systemd/system belongs to Debian's packages and /etc/systemd/system to the admin).
# It does not build: run `make build` first as yourself (sudo's PATH usually has no go), then
# `sudo make install`. DESTDIR stages the whole tree elsewhere (packaging, tests).
UNITDIR  ?= $(PREFIX)/lib/systemd/system
# Files earlier versions shipped and this one does not: removed, or they would still be read.
OBSOLETE := jail.d/00-defaults.conf

install:
	@if [ ! -x $(BIN) ] || [ -n "$$(find cmd internal go.mod go.sum -newer $(BIN) \( -name '*.go' ! -name '*_test.go' -o -name 'go.*' \) -print -quit)" ]; then \
	  echo "$(BIN) is missing or older than the sources: run 'make build' first (as yourself), then 'sudo make install'" >&2; \
	  exit 1; \
	fi
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/logjail
	install -d -m 0755 $(DESTDIR)$(SYSCONF) $(DESTDIR)$(SYSCONF)/jail.d $(DESTDIR)$(SYSCONF)/filter.d
	install -m 0644 jail.conf $(DESTDIR)$(SYSCONF)/jail.conf
	install -m 0644 jail.d/*.conf $(DESTDIR)$(SYSCONF)/jail.d/
	install -m 0644 filter.d/*.conf $(DESTDIR)$(SYSCONF)/filter.d/
	rm -f $(addprefix $(DESTDIR)$(SYSCONF)/,$(OBSOLETE))
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/logjail|$(PREFIX)/bin/logjail|g' -e 's|/etc/logjail|$(SYSCONF)|g' \
	  -e 's|/usr/local/lib/systemd/system|$(UNITDIR)|g' systemd/logjail.service >$(DESTDIR)$(UNITDIR)/logjail.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/logjail.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/logjail.service.tmp $(DESTDIR)$(UNITDIR)/logjail.service
	@echo
	@echo "Installed. Check the configuration, then start logjail now and at every boot:"
	@echo "  sudo $(PREFIX)/bin/logjail check --config $(SYSCONF)"
	@echo "  sudo systemctl daemon-reload"
	@echo "  sudo systemctl enable --now logjail"
	@echo "Your changes go in $(SYSCONF)/jail.local or $(SYSCONF)/jail.d/*.local."

# Uninstall: stops and disables the service (which removes its chains), then removes the binary,
# the unit and the shipped .conf files. Kept: every *.local file and anything else an admin added
# to $(SYSCONF), and the state in /var/lib/logjail.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ] && [ -f $(UNITDIR)/logjail.service ]; then \
	  echo "systemctl disable --now logjail.service"; systemctl disable --now logjail.service || true; \
	fi
	rm -f $(DESTDIR)$(PREFIX)/bin/logjail $(DESTDIR)$(UNITDIR)/logjail.service
	rm -f $(DESTDIR)$(SYSCONF)/jail.conf $(addprefix $(DESTDIR)$(SYSCONF)/,$(wildcard jail.d/*.conf filter.d/*.conf) $(OBSOLETE))
	@rmdir $(DESTDIR)$(SYSCONF)/jail.d $(DESTDIR)$(SYSCONF)/filter.d $(DESTDIR)$(SYSCONF) 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then echo "systemctl daemon-reload"; systemctl daemon-reload; fi

# The README's demo (needs root: it runs sudo when not root): builds logjail and the demo web
# server as the calling user, then scripts/demo.sh bans an attacker in private network
# namespaces and removes everything it made. Exit status 0 only if the ban worked.
demo: build
	$(GO) build -trimpath -o bin/demoweb ./cmd/demoweb
	@if [ "$$(id -u)" -eq 0 ]; then scripts/install-deps.sh && scripts/demo.sh; \
	elif command -v sudo >/dev/null; then echo "sudo scripts/demo.sh"; sudo sh -c 'scripts/install-deps.sh && scripts/demo.sh'; \
	else echo "the demo needs root (network namespaces, iptables): run scripts/demo.sh as root" >&2; exit 1; fi

clean:
	rm -rf bin
