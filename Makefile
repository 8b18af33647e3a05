# cmbs build, run and test entry points. Every target works on a fresh
# Debian machine as root: `deps` installs what is missing and is silent when
# everything is there.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Go is expected in /usr/local/go (the official tarball) or on PATH.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

BIN      := cmd/cmbs/cmbs
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# The embedded store of `make run` is serve's default, the XDG data
# directory ($XDG_DATA_HOME/cmbs or ~/.local/share/cmbs), unless STORE says.
STORE    ?=
ARGS     ?=
# Fuzzing runs a count, not a duration: a duration races Go 1.26's fuzz
# coordinator at its deadline (go.dev/issue/75804, fixed in Go 1.27) and fails
# spuriously with "context deadline exceeded" on a loaded machine.
FUZZTIME ?= 100000x
POUCHDB_SERVER_VERSION := 4.2.0
# golangci-lint is built from the module proxy at this version (go run caches
# the binary), so every machine lints with the same checks.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# apt-get needs root; use sudo when not root and it exists.
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo))
APT  := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -qq -o=Dpkg::Use-Pty=0

.PHONY: build run test lint bench deps deps-run check-go clean

## deps-run: what building and running need: Go, a C compiler and libzmq (cgo).
deps-run: check-go
	@missing=""; \
	command -v gcc >/dev/null || missing="$$missing gcc libc6-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	{ command -v pkg-config >/dev/null && pkg-config --exists libzmq; } || missing="$$missing libzmq3-dev"; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		$(APT) update && $(APT) install -y --no-install-recommends $$missing >/dev/null; \
	fi

## deps: deps-run plus what the tests need: pouchdb-server (a CouchDB-protocol server)
## and Chromium (the dashboard's browser tests drive it headless).
deps: deps-run
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
		echo "deps: installing chromium"; \
		$(APT) update && $(APT) install -y --no-install-recommends chromium >/dev/null; \
	fi
	@if ! command -v pouchdb-server >/dev/null; then \
		if ! command -v npm >/dev/null; then \
			echo "deps: installing nodejs npm"; \
			$(APT) update && $(APT) install -y --no-install-recommends nodejs npm >/dev/null; \
		fi; \
		echo "deps: installing pouchdb-server@$(POUCHDB_SERVER_VERSION)"; \
		$(SUDO) npm install -g --no-fund --no-audit --loglevel=error pouchdb-server@$(POUCHDB_SERVER_VERSION); \
	fi

check-go:
	@command -v go >/dev/null || { echo "Go is not installed: put Go 1.26 in /usr/local/go (https://go.dev/dl/) or on PATH" >&2; exit 1; }

## build: the cmbs binary, at cmd/cmbs/cmbs.
build: deps-run
	go build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cmbs

## run: build and serve on :8090 with the default store (or STORE); extra flags in ARGS.
run: build
	./$(BIN) serve $(if $(STORE),--store '$(STORE)') $(ARGS)

## lint: go.mod and go.sum are tidy, and golangci-lint (.ci/golangci.yml) finds nothing.
lint: deps-run
	@echo "== go mod tidy -diff"; \
	if ! go mod tidy -diff; then echo "go.mod or go.sum is not tidy: run 'go mod tidy'"; exit 1; fi; \
	echo "ok  go.mod and go.sum are tidy"
	@echo "== golangci-lint $(GOLANGCI_LINT_VERSION)"; $(GOLANGCI_LINT) run --config .ci/golangci.yml --allow-parallel-runners ./...

## test: lint, formatting, vet, a short fuzz run of every fuzz target, then the race-enabled
## tests (last, so the closing line counts every test).
test: deps lint
	@echo "== gofmt"; \
	unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@echo "== go vet"; go vet ./...
	@# occi's layering holds for its tests too: nothing under occi/ may reach broker or layers.
	@echo "== occi layering"; \
	deps=$$(go list -deps -test ./occi/...); \
	bad=$$(grep -E '^github\.com/houssem/cmbs/(broker|layers)([/ ]|$$)' <<<"$$deps" || true); \
	if [ -n "$$bad" ]; then echo "occi/... depends on broker or layers (occi's tests use occi/occitest, not broker/brokertest):"; echo "$$bad"; exit 1; fi; \
	echo "ok  occi/... reaches neither broker nor layers"
	@# The layers below occi keep to themselves too: layers moves bytes and
	@# reaches no other layer; store reaches none of occi, broker and layers.
	@echo "== layers and store layering"; \
	bad=$$(go list -deps -test ./layers/... | grep -E '^github\.com/houssem/cmbs/(occi|store|broker)([/ ]|$$)' || true); \
	if [ -n "$$bad" ]; then echo "layers/... depends on occi, store or broker:"; echo "$$bad"; exit 1; fi; \
	bad=$$(go list -deps -test ./store/... | grep -E '^github\.com/houssem/cmbs/(occi|broker|layers)([/ ]|$$)' || true); \
	if [ -n "$$bad" ]; then echo "store/... depends on occi, broker or layers:"; echo "$$bad"; exit 1; fi; \
	echo "ok  layers/... reaches neither occi, store nor broker; store/... reaches none of occi, broker, layers"
	@echo "== fuzz, $(FUZZTIME) per target"; \
	n=0; \
	for f in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort); do \
		pkg=./$$(dirname "$${f#./}"); \
		for fn in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$$f"); do \
			n=$$((n+1)); \
			if ! out=$$(go test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) "$$pkg" 2>&1); then \
				echo "$$out"; echo "fuzz: $$fn in $$pkg failed (new corpus entries go to $$pkg/testdata/fuzz/$$fn)"; exit 1; \
			fi; \
			echo "ok  $$fn $$pkg"; \
		done; \
	done; \
	echo "fuzz: $$n passed, 0 failed"
	@echo "== go test -race"; \
	log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	status=0; go test -race -count=1 -timeout 30m -v ./... >"$$log" 2>&1 || status=$$?; \
	if [ $$status -ne 0 ]; then \
		grep -vE '^[[:space:]]*(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$$)' "$$log"; \
	else \
		grep -E '^(ok|\?|FAIL)[[:space:]]' "$$log"; \
	fi; \
	echo "tests: $$(grep -cE '^[[:space:]]*--- PASS' "$$log") passed, $$(grep -cE '^[[:space:]]*--- FAIL' "$$log") failed, $$(grep -cE '^[[:space:]]*--- SKIP' "$$log") skipped"; \
	exit $$status

## bench: every Go benchmark, with allocation counts, between the machine's load before
## and after (other work skews the figures), then issue 9's targets as met or not.
## BENCH=regexp picks benchmarks, BENCHPKG=./broker/ packages, BENCHCOUNT=3 repeats each.
BENCH      ?= .
BENCHPKG   ?= ./...
BENCHCOUNT ?= 1
bench: deps
	@echo "== load before: $$(uptime)"
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	go test -run='^$$' -bench='$(BENCH)' -benchmem -count=$(BENCHCOUNT) -timeout 60m $(BENCHPKG) | tee "$$out"; \
	echo "== load after: $$(uptime)"; \
	awk 'function val(unit, i) { for (i = 2; i < NF; i++) if ($$(i + 1) == unit) return $$i + 0; return -1 } \
	function verdict(ok) { return ok ? "met" : "NOT met" } \
	/^BenchmarkL2Durable/ { v = val("%-of-bare"); printf "target: L2 durable delivery %.2f%% of the bare DEALER->ROUTER pair (>= 10%%): %s\n", v, verdict(v >= 10) } \
	/^BenchmarkSendOnCreate/ { v = val("%-of-bare"); printf "target: one create per request, 8 clients, %.1f%% of bare POST + fsync put (>= 60%%): %s\n", v, verdict(v >= 60) } \
	/^BenchmarkL1Wait/ { v = val("x-bare"); printf "target: L1 under Prefer: wait, median %.1fx bare REQ/REP + HTTP (<= 3x): %s\n", v, verdict(v >= 0 && v <= 3) }' "$$out"

clean:
	rm -f $(BIN) coverage.out
