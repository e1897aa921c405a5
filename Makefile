# fin-orchestrator. On a fresh machine: `make run` (the whole stack) and `make test` (every test).
SHELL := /bin/bash
GO    ?= go
# The Go toolchain go.mod names (a newer patch than a machine may bring, for the standard
# library's security fixes); the go command fetches it from the module proxy once.
export GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' go.mod)
FIN   := bin/fin

# Lambda binaries: static, no cgo (DuckDB stays out), no RPC shim, arm64 like template.yaml.
LAMBDA_GOFLAGS := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
LAMBDA_TAGS    := lambda.norpc,minicore_disabled
LAMBDAS        := $(notdir $(wildcard functions/*))

.PHONY: run test bench build lambdas sam-build deploy services venv postgres migrate generate clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: services build ## start Postgres and the local stack; Ctrl-C stops it
	$(FIN) up

test: ## every test, with the services they need (what CI runs)
	bash scripts/test.sh

bench: ## benchmarks, each beside its reference from the same run
	bash scripts/bench.sh

services: postgres venv ## install and start the local services (idempotent)

postgres:
	bash scripts/postgres.sh

venv:
	bash scripts/venv.sh

build: ## build the local CLI into bin/fin
	$(GO) build -o $(FIN) ./cmd/fin

# lambda-build builds functions/$(1) into $(2)/bootstrap.
define lambda-build
	$(LAMBDA_GOFLAGS) $(GO) build -tags $(LAMBDA_TAGS) -trimpath -ldflags='-s -w' -o $(2)/bootstrap ./functions/$(1)
endef

lambdas: $(addprefix lambda-,$(LAMBDAS)) ## build every Lambda bootstrap into bin/lambda/<name>/bootstrap

lambda-%:
	$(call lambda-build,$*,bin/lambda/$*)

# `sam build` (BuildMethod: makefile, build_in_source) calls build-<LogicalId> with ARTIFACTS_DIR.
build-ApiFunction:
	$(call lambda-build,api,$(ARTIFACTS_DIR))
build-CdcLandingFunction build-CdcLandingSelfManagedFunction:
	$(call lambda-build,cdc-landing,$(ARTIFACTS_DIR))
build-WarehouseLoaderFunction:
	$(call lambda-build,warehouse-loader,$(ARTIFACTS_DIR))

SAM := .venv-sam/bin/sam
export SAM_CLI_TELEMETRY := 0

# sam build takes one resource id or all: all but the dbt-runner image, whose build needs Docker
# (its bootstrap: make lambda-dbt-runner).
sam-build: ## validate template.yaml and build the zip functions with sam (no Docker)
	bash scripts/venv.sh sam
	$(SAM) validate --lint
	.venv-sam/bin/python scripts/samlint.py template.yaml
	$(SAM) build --exclude DbtRunnerFunction

deploy: sam-build ## build the dbt-runner image too and deploy (ENV=prod for production)
	$(SAM) build
	$(SAM) deploy --config-env $(or $(ENV),default)

migrate: postgres build ## apply the schema migrations
	$(FIN) migrate

generate: postgres build ## load the configured data set once (config.yaml)
	$(FIN) generate --once

clean: ## remove build output and local state (not the Postgres cluster)
	rm -rf bin .fin
