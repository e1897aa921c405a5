# fin-orchestrator. On a fresh machine: `make run` (the whole stack) and `make test` (every test).
SHELL := /bin/bash
GO    ?= go
FIN   := bin/fin

# Lambda binaries: static, no cgo (DuckDB stays out), no RPC shim, arm64 like template.yaml.
LAMBDA_GOFLAGS := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
LAMBDA_TAGS    := lambda.norpc,minicore_disabled
LAMBDAS        := $(notdir $(wildcard functions/*))

.PHONY: run test bench build lambdas services venv postgres migrate generate clean help

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

lambdas: ## build every Lambda bootstrap into bin/lambda/<name>/bootstrap
	@for f in $(LAMBDAS); do \
	  echo "build functions/$$f"; \
	  $(LAMBDA_GOFLAGS) $(GO) build -tags $(LAMBDA_TAGS) -trimpath -ldflags='-s -w' \
	    -o bin/lambda/$$f/bootstrap ./functions/$$f || exit 1; \
	done

migrate: postgres build ## apply the schema migrations
	$(FIN) migrate

generate: postgres build ## load the configured data set once (config.yaml)
	$(FIN) generate --once

clean: ## remove build output and local state (not the Postgres cluster)
	rm -rf bin .fin
