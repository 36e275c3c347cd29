# slotcast: `make run` runs the whole system on embedded defaults, `make test` runs every test.
SHELL := /usr/bin/env bash
CARGO ?= cargo

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: run
run: ## Run all five services locally (SQLite under var/, a nats-server of its own, mail and texts as files in var/mail/ and var/sms/)
	@scripts/run-local.sh

.PHONY: test
test: prerequisites ## Run every test, the fault-injection cases included (starts or installs nats-server and Postgres where it can)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

.PHONY: chaos
chaos: prerequisites ## Only the fault-injection cases (real processes killed, NATS crashed, SMTP failing...), with their figures
	$(CARGO) build --workspace --bins
	$(CARGO) test -p slotcast-chaos --test chaos -- --nocapture

.PHONY: fuzz
fuzz: prerequisites ## Only the schemathesis run against the four HTTP APIs' OpenAPI documents (part of `make test`)
	$(CARGO) test -p slotcast-e2e --test fuzz -- --nocapture

.PHONY: prerequisites
prerequisites: ## Check (and where possible install or start) nats-server and Postgres, and schemathesis under var/
	@scripts/prerequisites.sh

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: build
build: ## Build every binary
	$(CARGO) build --workspace --bins

.PHONY: bench
bench: bench-prerequisites ## Run the whole system in release mode and measure it (BENCH_SCALE=small for a quick run; see BENCHMARKS.md)
	$(CARGO) build --release -p scheduling -p matching -p email-notifier -p inapp-notifier -p sms-notifier -p slotcast-bench
	"$${CARGO_TARGET_DIR:-target}/release/bench"

.PHONY: bench-prerequisites
bench-prerequisites: prerequisites ## Check (and where possible install) Postfix's smtp-sink for the benchmark
	@scripts/bench-prerequisites.sh

.PHONY: previews
previews: ## Render every email and patient page in every language to var/previews/ (and screenshot them with Chromium, if installed)
	@CARGO=$(CARGO) scripts/previews.sh

.PHONY: token
token: ## Print a dev staff token for the secret `make run` uses (ROLE=patient SUB=<uuid> for others)
	@JWT_SECRET="$${JWT_SECRET:-$$(cat var/dev-jwt-secret 2>/dev/null)}" $(CARGO) run -q -p scheduling -- mint-token --role $${ROLE:-staff} $${SUB:+--sub $$SUB}

.PHONY: clean
clean: ## Remove build output and local state (var/)
	$(CARGO) clean
	rm -rf var
