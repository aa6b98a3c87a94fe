# Every target runs exactly what CI runs. `make help` lists them.

CARGO ?= cargo

.PHONY: help run build test lint check-domain-purity fmt clean-data bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

run: ## Build and start the server on 127.0.0.1:8080 with SQLite in demo mode
	$(CARGO) run --release --bin leanmote-api -- serve --demo

build: ## Build the release binary into target/release/leanmote-api
	$(CARGO) build --release --bin leanmote-api

test: check-domain-purity ## Run every test (PostgreSQL tests skip visibly when no server answers)
	$(CARGO) test --workspace

lint: check-domain-purity ## Check formatting and run clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-domain-purity: ## Fail when the domain crate depends on diesel, actix or tokio
	@scripts/check-domain-purity.sh

fmt: ## Format the code
	$(CARGO) fmt --all

bench: ## Benchmark the service against direct database writes (BENCH_ARGS="--tasks 2000" for a quick run)
	$(CARGO) run --release -p leanmote-bench -- $(BENCH_ARGS)

clean-data: ## Delete the default SQLite database under ./data
	rm -rf ./data
