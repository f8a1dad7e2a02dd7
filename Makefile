# Entry points; the scripts hold the logic. Tools live in .cache/ (scripts/setup.sh).
SHELL := /usr/bin/env bash
VENV := $(CURDIR)/.cache/venv
TEMPLATE := infra/template.yaml
# cargo lambda's --target-dir is broken; it honours CARGO_TARGET_DIR.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# rust-toolchain.toml names the aarch64 target; rustup must not try to
# download it (or anything) on each cargo call of an offline `make test`.
# `make build` adds the target explicitly (scripts/build.sh).
export RUSTUP_AUTO_INSTALL ?= 0

.PHONY: help run test bench build sam deploy lint fmt setup

help:
	@echo "make run     local stack: DynamoDB Local + cargo lambda watch on PORT (default 9000), demo data, ready curl"
	@echo "make test    fmt, clippy -D warnings, cargo test --workspace (against DynamoDB Local), cfn-lint"
	@echo "make bench   criterion CPU bench + DynamoDB cost/throughput bench (starts DynamoDB Local)"
	@echo "make build   release build of every function for Lambda (arm64 zips) into \$$CARGO_TARGET_DIR/lambda/, with each zip's size"
	@echo "make sam     sam validate --lint and sam build of $(TEMPLATE), offline (SAM CLI from PyPI), with wall times"
	@echo "make deploy  sam build + sam deploy of $(TEMPLATE) (prints the commands if sam is not installed)"
	@echo "make lint    fmt --check, clippy -D warnings, cfn-lint (no DynamoDB needed)"
	@echo "make fmt     cargo fmt --all"

setup:
	scripts/setup.sh

run:
	scripts/run.sh

test:
	scripts/test.sh

bench:
	scripts/bench.sh

build:
	scripts/build.sh

sam:
	scripts/sam-check.sh

# sam's rust-cargolambda build method is a beta feature; it builds each
# function's Metadata.BuildProperties.Binary with cargo lambda itself.
# `make sam` installs the SAM CLI into .cache/sam-venv; deploy uses it from there too.
deploy: export PATH := $(CURDIR)/.cache/sam-venv/bin:$(PATH)
deploy:
	@if command -v sam >/dev/null; then \
	  set -x; \
	  PATH="$(VENV)/bin:$$PATH" sam build --template-file $(TEMPLATE) --beta-features && \
	  sam deploy --guided; \
	else \
	  echo "sam (AWS SAM CLI) is not installed; with it and AWS credentials, run:"; \
	  echo "  PATH=\"$(VENV)/bin:\$$PATH\" sam build --template-file $(TEMPLATE) --beta-features"; \
	  echo "  sam deploy --guided    # later: sam deploy (answers kept in samconfig.toml)"; \
	  echo "Parameters: LogLevel (RUST_LOG, default info), LogRetentionInDays (default 30),"; \
	  echo "  ManagementReservedConcurrency (default 10), PushThrottlingRateLimit (500), PushThrottlingBurstLimit (1000),"; \
	  echo "  AlarmEmail (empty: no mail subscription to the alarm topic). All in docs/configuration.md."; \
	  echo "Then create the first app key against the stack's table (output TableName):"; \
	  echo "  TABLE_NAME=<TableName> AWS_REGION=<region> cargo run -p shared --bin alertctl -- create-app-key"; \
	fi

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint $(TEMPLATE)

fmt:
	cargo fmt --all
