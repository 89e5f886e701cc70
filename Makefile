# The two commands a fresh machine needs are `make run` and `make test`.
GO        ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PKGS      := ./...
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: run test lint build bench bench-quick bench-scale soak soak-tokens

## run: build and run `authd dev` (private Postgres, demo client, mail catcher)
run:
	@scripts/ensure-deps.sh
	$(GO) run ./cmd/authd dev

## test: every test, including browser tests in headless Chromium
# reliability/ drives real authd processes (built without -race, so their
# latencies mean something) and measures timing: it runs without the race
# detector, every other package with it.
test:
	@scripts/ensure-deps.sh browser
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $$($(GO) list ./... | grep -v /reliability$$)
	$(GO) test -count=1 -timeout 15m ./reliability/

## lint: gofmt check and go vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

## build: static binary in bin/authd
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$$(git describe --always --dirty 2>/dev/null || echo dev)" -o bin/authd ./cmd/authd

## bench: load generator against a private authd (bounded in time)
bench:
	@scripts/ensure-deps.sh
	$(GO) run ./cmd/authd-bench

## bench-quick: every HTTP scenario for a few seconds
bench-quick:
	@scripts/ensure-deps.sh
	$(GO) run ./cmd/authd-bench -quick

## bench-scale: every scenario on an empty and on a production-size database
# (1M users, 50M ledger entries, 10M token rows; loaded once, ~37 GB, cached
# in cmd/authd-bench/.scale). SCALE=0.01 for a small world; BENCH_ARGS for
# more flags (e.g. -load-only, -startups 5, -only refresh -cpuprofile-dir prof).
SCALE ?= 1
BENCH_ARGS ?=
bench-scale:
	@scripts/ensure-deps.sh
	$(GO) run ./cmd/authd-bench -scale $(SCALE) -json bench-scale-results.json $(BENCH_ARGS)

## soak-tokens: steady token issuance and refresh for SOAK_DURATION (default
# 20m) with table sizes and p99 every minute: the purge and autovacuum must
# keep the token tables bounded. SOAK_ARGS=-scale 1 runs it on the
# production-size world.
SOAK_DURATION ?= 20m
soak-tokens:
	@scripts/ensure-deps.sh
	$(GO) run ./cmd/authd-bench -soak $(SOAK_DURATION) $(SOAK_ARGS)

## soak: fault-injection and replica scenarios for a bounded time, with a report
soak:
	@scripts/ensure-deps.sh
	$(GO) run ./cmd/authd-soak
