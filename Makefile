# The front door: `make help` lists every target with its one-line doc.
#
# The Temporal CLI (with its dev server) lives in its own module, tools/go.mod,
# so its large dependency graph never leaks into the service's go.mod. It is
# built once into bin/temporal and rebuilt only when tools/go.mod changes.

SHELL         := bash
.SHELLFLAGS   := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go

# staticcheck 2026.x; v0.8.x is the first line built for go1.26.
STATICCHECK_VERSION ?= v0.8.2

# Modules of their own, so their dependencies stay out of the service's go.mod.
NESTED_MODULES := deployments/validate deployments/docker/probe

# Extra flags for the benchmark, e.g. `make bench BENCHFLAGS='-n 2000 -db postgres'`.
BENCHFLAGS ?=

# Extra flags for the fault suite, e.g. `make chaos CHAOSFLAGS='-events 2000 -seed 7'`
# (`go run ./cmd/chaos -h` lists them; -out FILE appends the figures to FILE).
CHAOSFLAGS ?=

# Extra flags for go test, e.g. `make test GOTESTFLAGS='-run TestX -v'`.
GOTESTFLAGS ?=

# Store tests run against this database; `make test TEST_DATABASE_URL=...` overrides it.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dispatcher_test?sslmode=disable

# Test and benchmark processes find the tools through these. With
# DISPATCHER_TEST_STRICT a test whose service is missing fails instead of
# skipping: `make services` has provided them all.
TEST_ENV = TEMPORAL_CLI=$(CURDIR)/bin/temporal \
           DISPATCHER_BIN=$(CURDIR)/bin/dispatcher \
           MAILCATCHER_BIN=$(CURDIR)/bin/mailcatcher \
           TEST_DATABASE_URL='$(TEST_DATABASE_URL)' \
           DISPATCHER_TEST_STRICT=1

.PHONY: help
help: ## Show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_\/.-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# What `dispatcher version`, /health and dispatcher_build_info report:
# `make build VERSION=v1.2.0` for a release. Passed explicitly rather than
# left to the toolchain's VCS stamping, which GOFLAGS=-buildvcs=false or a
# copy without .git turns off. BUILD_DATE defaults to the commit's time,
# so that a rebuild of one commit is identical.
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS    := -X main.version=$(VERSION) -X main.revision=$(REVISION) -X main.buildDate=$(BUILD_DATE)

.PHONY: build
build: ## Build the service into bin/dispatcher
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dispatcher ./cmd/dispatcher

bin/temporal: tools/go.mod ## Build the Temporal CLI + dev server (slow the first time)
	@echo ">> building bin/temporal from tools/go.mod: this takes several minutes (~8 on 2 cores) the first time"
	cd tools && $(GO) build -o ../bin/temporal github.com/temporalio/cli/cmd/temporal
	@touch $@

# The Temporal server and its SQL schema tool, at the server version the CLI
# pins (tools/go.mod): seconds once bin/temporal has been built.
bin/temporal-server: tools/go.mod ## Build the Temporal server (go.temporal.io/server/cmd/server) for make temporal-pg
	cd tools && $(GO) build -o ../bin/temporal-server go.temporal.io/server/cmd/server
	@touch $@

bin/temporal-sql-tool: tools/go.mod ## Build temporal-sql-tool (creates and upgrades Temporal's SQL schemas)
	cd tools && $(GO) build -o ../bin/temporal-sql-tool go.temporal.io/server/cmd/tools/sql
	@touch $@

.PHONY: tools
tools: bin/temporal bin/temporal-server bin/temporal-sql-tool ## Build the development tools into bin/ (Temporal CLI, server, SQL tool)

# The mail catcher of `make run` is plain Go (cmd/mailcatcher): no Node, no
# download. Phony like build, since go's build cache makes a rebuild cheap.
.PHONY: mailcatcher
mailcatcher: ## Build the local mail catcher (SMTP + web UI) into bin/mailcatcher
	$(GO) build -o bin/mailcatcher ./cmd/mailcatcher

.PHONY: run
run: build mailcatcher bin/temporal ## Run Temporal dev server, mail catcher and the service locally (Ctrl-C stops all)
	./scripts/run.sh

# A real Temporal server on PostgreSQL (docs/temporal-postgres.md). Options
# through the environment, e.g. `make temporal-pg TEMPORAL_PG_BACKGROUND=1`,
# TEMPORAL_PG_FRONTEND_PORT, TEMPORAL_PG_DB_PREFIX, TEMPORAL_PG_HOST/PORT/USER,
# or flags: `make temporal-pg TEMPORAL_PG_FLAGS='--port 17233 --db-prefix x'`.
TEMPORAL_PG_FLAGS ?=

.PHONY: temporal-pg
temporal-pg: services bin/temporal bin/temporal-server bin/temporal-sql-tool ## Temporal server on PostgreSQL (+ SQL visibility) on 127.0.0.1:7233; Ctrl-C stops it
	./scripts/temporal-pg.sh start $(TEMPORAL_PG_FLAGS)

.PHONY: temporal-pg-stop
temporal-pg-stop: ## Stop the server of make temporal-pg TEMPORAL_PG_BACKGROUND=1
	./scripts/temporal-pg.sh stop $(TEMPORAL_PG_FLAGS)

.PHONY: temporal-pg-drop
temporal-pg-drop: bin/temporal-sql-tool ## Stop it and drop its databases: the next make temporal-pg starts afresh
	./scripts/temporal-pg.sh drop $(TEMPORAL_PG_FLAGS)

.PHONY: services
services: ## Install and start what the tests need (PostgreSQL, Node.js, RabbitMQ, NATS JetStream, Chromium); quick when all is up
	./scripts/services.sh

.PHONY: test
test: services bin/temporal build mailcatcher ## Run all tests against real services (make services provides them), then fuzz-short
	$(TEST_ENV) $(GO) test -count=1 -timeout 30m $(GOTESTFLAGS) ./...
	@$(MAKE) --no-print-directory fuzz-short
	@echo ">> deployments: manifests, alert rules, dashboard, compose file, Docker build (offline)"
	$(foreach m,$(NESTED_MODULES),cd $(m) && $(GO) test -count=1 $(GOTESTFLAGS) ./... && cd $(CURDIR) &&) true

# The fuzz targets, as package:Name. Their committed seeds (testdata/fuzz/<Name>/)
# also run as plain tests in `go test`; a crash found by fuzzing lands there
# too, and stays as a regression test once committed.
FUZZ_TARGETS := ./api:FuzzParseRQL ./api:FuzzEvents .:FuzzTemplate .:FuzzResolve

# How long fuzz-short fuzzes each target: a count of inputs (about 10 s each
# on 2 shared cores), or a duration, e.g. `make fuzz-short FUZZTIME=2m`. A
# count by default: with a duration, Go before 1.27 may report a bare
# "context deadline exceeded" failure as the time runs out, with no input
# to blame (go.dev/issue/75804), which failed CI once.
FUZZTIME ?= 15000x

.PHONY: fuzz-short
fuzz-short: ## Fuzz each target (RQL, every event envelope, templates, recipients and data) for FUZZTIME (15000x: 15,000 inputs)
	$(foreach t,$(FUZZ_TARGETS),$(GO) test -run='^$$' -fuzz='^$(word 2,$(subst :, ,$(t)))$$' -fuzztime=$(FUZZTIME) $(word 1,$(subst :, ,$(t))) &&) true

.PHONY: record-histories
record-histories: bin/temporal ## Record the workflows' histories of the newest version into workflows/testdata (never rewrites one)
	$(TEST_ENV) DISPATCHER_RECORD_HISTORY=1 $(GO) test -count=1 -run TestRecordHistories -v ./workflows

# The production-layout rows run a Temporal server on the local PostgreSQL
# (scripts/temporal-pg.sh), hence services and the server's binaries.
.PHONY: bench
bench: services bin/temporal bin/temporal-server bin/temporal-sql-tool build ## Benchmark dev server and production layout (Temporal + store on PostgreSQL) against bare workflows; rewrites docs/benchmarks.md
	$(TEST_ENV) $(GO) run ./cmd/bench -out docs/benchmarks.md $(BENCHFLAGS)

.PHONY: chaos
chaos: bin/temporal build ## Fault suite: SIGKILL worker, API, Temporal under load; each effect exactly once? (docs/reliability.md)
	$(TEST_ENV) $(GO) run ./cmd/chaos $(CHAOSFLAGS)

.PHONY: screenshots
screenshots: services bin/temporal build ## Retake the console's pictures in docs/console (the browser test, in headless Chromium)
	$(TEST_ENV) DISPATCHER_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run '^TestEndToEndConsole$$' ./cmd/dispatcher

.PHONY: lint
lint: ## Run go vet and staticcheck
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(foreach m,$(NESTED_MODULES),cd $(m) && $(GO) vet ./... && cd $(CURDIR) &&) true

.PHONY: fmt
fmt: ## Format the Go files (tracked and new, not ignored) with gofmt
	git ls-files -z --cached --others --exclude-standard -- '*.go' | xargs -0 -r gofmt -w

.PHONY: tidy
tidy: ## Tidy go.mod/go.sum of the service and of tools/
	$(GO) mod tidy
	cd tools && $(GO) mod tidy
	$(foreach m,$(NESTED_MODULES),cd $(m) && $(GO) mod tidy && cd $(CURDIR) &&) true

.PHONY: migrate
migrate: build ## Apply database migrations (DATABASE_URL)
	./bin/dispatcher migrate

.PHONY: clean
clean: temporal-pg-stop ## Remove bin/ and .run/ (local state of `make run`; one DISPATCHER_RUN_DIR moved is yours to remove)
	rm -rf bin .run
