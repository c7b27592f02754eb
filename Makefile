# make test: everything CI runs. It installs what the tests need when it is
# missing (Debian packages; we run as root), then vets, checks formatting and
# that go.mod is tidy, lints, runs the race-enabled tests and checks the
# examples.
SHELL := /bin/bash
GO ?= go
DEB_PACKAGES := prometheus prometheus-alertmanager postgresql chromium systemd
# The command each package provides, to tell whether it is installed.
DEB_PROBES := /usr/bin/prometheus /usr/bin/prometheus-alertmanager /usr/bin/amtool /usr/lib/postgresql/*/bin/initdb /usr/bin/chromium /usr/bin/systemd-analyze

.PHONY: test deps bench-deps vet fmt-check tidy-check lint unit examples fuzz build bench dist dist-check helm-test

test: deps vet fmt-check tidy-check lint unit examples helm-test dist-check

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
# --allow-serial-runners: a second run (another checkout linting at the
# same time) waits for the first instead of failing.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/golangci-lint-$(GOLANGCI_LINT_VERSION)
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run --allow-serial-runners ./...

$(GOLANGCI_LINT):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin/.install $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv bin/.install/golangci-lint $@ && rmdir bin/.install

# The replicas' chaos suite and takeover timing run apart, with -v, so
# that their figures are printed.
HA_TESTS = ^(TestChaos|TestTakeoverTime)$$
unit:
	$(GO) test -race -count=1 -skip '$(HA_TESTS)' ./...
	$(GO) test -race -count=1 -v -run '$(HA_TESTS)' ./e2e

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

# The release binaries: static (no cgo), cross-compiled for each of
# DIST_PLATFORMS, stamped like make build, built with -trimpath, into dist/
# as assertd-OS-ARCH beside their SHA256SUMS (sha256sum -c checks them).
# The Dockerfile copies dist/assertd-linux-$$TARGETARCH.
DIST_PLATFORMS := linux/amd64 linux/arm64
dist:
	@rm -rf dist && mkdir -p dist
	@set -e; for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "dist/assertd-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o dist/assertd-$$os-$$arch ./cmd/assertd; \
	done
	cd dist && sha256sum assertd-* > SHA256SUMS

# make dist, then check what it built: each binary in SHA256SUMS with its
# checksum, an ELF file of its architecture's machine, statically linked,
# and built with CGO_ENABLED=0, -trimpath and the version stamp. About 20 s
# with a warm build cache; the first cross-compile of both takes about 6
# CPU-minutes.
dist-check: dist
	$(GO) run ./packaging/distcheck -version $(VERSION) dist

# The Helm chart's render test: a module of its own (deploy/helm), so that
# Helm's dependencies stay out of assertd's go.mod; tidy-checked, vetted and
# linted too. About 14 s warm; a first compile of Helm and the Kubernetes
# types takes about 2.5 CPU-minutes.
helm-test: $(GOLANGCI_LINT)
	cd deploy/helm && $(GO) mod tidy -diff && $(GO) vet ./... && ../../$(GOLANGCI_LINT) run --allow-serial-runners ./... && $(GO) test -count=1 ./...

# The benchmark table of docs/BENCHMARKS.md: every figure a ratio
# against a baseline measured in the same run. Takes about 12 minutes and
# a few GiB on a quiet machine (row 9 holds a million instances); needs
# PostgreSQL (make deps) and wrk (bench-deps). Not part of make test.
# BENCH_ROWS=1,2 picks rows. The Benchmark functions underneath run alone
# with: go test ./bench -run '^$$' -bench . -benchtime 3x
BENCH_ROWS ?=
# What make bench needs beyond make deps: wrk, the external load generator
# of the ping row.
BENCH_DEB_PACKAGES := wrk
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { echo "installing $(BENCH_DEB_PACKAGES) (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BENCH_DEB_PACKAGES) >/dev/null; }

bench: deps bench-deps
	ASSERTD_BENCH_ROWS=$(BENCH_ROWS) $(GO) test -tags bench ./bench -run '^TestTable$$' -count=1 -v -timeout 20m
