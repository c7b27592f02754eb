# make test: everything CI runs. It installs what the tests need when it is
# missing (Debian packages; we run as root), then vets, checks formatting and
# that go.mod is tidy, lints, runs the race-enabled tests and checks the
# examples.
SHELL := /bin/bash
GO ?= go
DEB_PACKAGES := prometheus postgresql chromium
# The command each package provides, to tell whether it is installed.
DEB_PROBES := /usr/bin/prometheus /usr/lib/postgresql/*/bin/initdb /usr/bin/chromium

.PHONY: test deps vet fmt-check tidy-check lint unit examples fuzz build bench

test: deps vet fmt-check tidy-check lint unit examples

deps:
	@missing=0; for p in $(DEB_PROBES); do ls $$p >/dev/null 2>&1 || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing $(DEB_PACKAGES) (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	fi

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# go mod tidy would change nothing (it prints the difference and fails).
tidy-check:
	$(GO) mod tidy -diff

# golangci-lint with .golangci.yml, installed into bin/ when missing (about
# 3 minutes with cold caches). A first run takes about 80 CPU-seconds (40 s
# on two idle cores); later runs re-check only what changed (3 s when
# nothing did).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/golangci-lint-$(GOLANGCI_LINT_VERSION)
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin/.install $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv bin/.install/golangci-lint $@ && rmdir bin/.install

unit:
	$(GO) test -race -count=1 ./...

examples:
	$(GO) run ./cmd/assertd check examples/...
	$(GO) run ./cmd/assertd test examples/...

# Fuzz the loaders for a while (not part of make test).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/strictyaml -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
	$(GO) test ./config -run '^$$' -fuzz FuzzParseRules -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
	$(GO) test ./config -run '^$$' -fuzz FuzzParseConfig -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
	$(GO) test ./sources -run '^$$' -fuzz FuzzWriteHandler -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
	$(GO) test ./web -run '^$$' -fuzz FuzzRemoteWriteAuth -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
	$(GO) test ./sources/heartbeat -run '^$$' -fuzz FuzzPingHandler -fuzztime $(FUZZTIME) -fuzzminimizetime 2s

# The binary, stamped with its version and revision (assertd version,
# assertd_build_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/assertd/assertd.Version=$(VERSION) -X github.com/assertd/assertd.Revision=$(REVISION)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o assertd ./cmd/assertd

# The benchmark table of docs/BENCHMARKS.md: every figure a ratio
# against a baseline measured in the same run. Takes about 6 minutes and a
# few GiB; needs PostgreSQL (make deps). Not part of make test.
# BENCH_ROWS=1,2 picks rows. The Benchmark functions underneath run alone
# with: go test ./bench -run '^$$' -bench . -benchtime 3x
BENCH_ROWS ?=
bench: deps
	ASSERTD_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -tags bench ./bench -run '^TestTable$$' -count=1 -v -timeout 20m
