# logjail — build, test, benchmark, install.
GO       ?= go
PREFIX   ?= /usr/local
SYSCONF  ?= /etc/logjail
BIN      := bin/logjail

.PHONY: all build test unit lint fuzz bench bench-go bench-regex install clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/logjail

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
                window:FuzzWindow:10000

fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
	  echo "fuzz $$fn ($$n inputs)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $${n}x -fuzzminimizetime 3s -timeout 5m ./internal/$$pkg || exit 1; \
	done

bench: build bench-go bench-regex

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

bench-regex: build
	scripts/bench-regex.sh

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/logjail
	install -d $(DESTDIR)$(SYSCONF)/filter.d $(DESTDIR)$(SYSCONF)/jail.d
	install -m 0644 filter.d/*.conf $(DESTDIR)$(SYSCONF)/filter.d/
	@for f in jail.conf; do [ -f $$f ] && install -m 0644 $$f $(DESTDIR)$(SYSCONF)/ || true; done
	@if ls jail.d/*.conf >/dev/null 2>&1; then install -m 0644 jail.d/*.conf $(DESTDIR)$(SYSCONF)/jail.d/; fi

clean:
	rm -rf bin
