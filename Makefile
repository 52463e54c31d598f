# nftbridge: two commands do all the set-up on a fresh machine (as root):
#   make demo   builds nftbridge and shows it working in throwaway namespaces
#   make test   runs the whole test suite (unit, kernel, e2e, Docker, VM)
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin
# tests and scripts run go themselves
export PATH := $(dir $(GO)):$(PATH)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build deps demo test unit e2e e2e-docker e2e-vm bench bench-smoke fuzz vet clean

all: build

# nftbridge is the CLI, built without the daemon's HTTP server (faster to
# start); nftbridged is the full build, which `nftbridge daemon` runs.
build:
	CGO_ENABLED=0 $(GO) build -tags nodaemon -ldflags '$(LDFLAGS)' -o $(BIN)/nftbridge ./cmd/nftbridge
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/nftbridged ./cmd/nftbridge
	CGO_ENABLED=0 $(GO) build -o $(BIN)/nbecho ./cmd/nbecho

# deps installs what the demo and the tests need (Debian packages).
deps:
	bash .ci/deps

demo: deps build
	bash e2e/demo.sh $(BIN)/nftbridge $(BIN)/nbecho

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }

# unit and kernel tests of every package, the namespace and Docker e2e suites,
# the benchmark smoke run, then the e2e suite again inside an nft-only VM.
test: deps vet build
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) e2e-vm

unit:
	$(GO) test -count=1 ./ports/ ./bridge/... ./nft/ ./driver/...

e2e: build
	NFTBRIDGE_BIN=$(CURDIR)/$(BIN)/nftbridge $(GO) test -count=1 -v -timeout 20m ./e2e/

e2e-vm:
	bash e2e/vm/run.sh

bench: deps build
	$(GO) run ./e2e/bench/cmd/nbbench -out docs/benchmarks

fuzz:
	$(GO) test ./ports -run XXX -fuzz FuzzParseSpec -fuzztime 60s

clean:
	rm -rf $(BIN)
