# logjail — build, test, benchmark, install.
GO       ?= go
PREFIX   ?= /usr/local
SYSCONF  ?= /etc/logjail
BIN      := bin/logjail
FUZZTIME ?= 10s

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

fuzz:
	@for t in config:FuzzParse config:FuzzLoad logtime:FuzzFind logtime:FuzzNew \
	          source:FuzzUtmpReader filter:FuzzMatcher window:FuzzWindow; do \
	  pkg=$${t%%:*}; fn=$${t#*:}; \
	  echo "fuzz $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./internal/$$pkg || exit 1; \
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
