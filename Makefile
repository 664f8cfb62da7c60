# sikkerkey-agent: build, test and demo entry points. `make test` is what CI runs.

CARGO ?= cargo
SERVICES := tests/services/run.sh

.PHONY: all build test unit demo fmt lint clean

all: build

build:
	$(CARGO) build --release

## Every test: starts throwaway PostgreSQL/MariaDB/Redis/MongoDB-compatible servers
## (installing them with apt-get/pip when missing), runs unit and integration tests.
test:
	$(CARGO) build --all-targets
	CI="$${CI:-}" $(SERVICES) $(CARGO) test --all-targets

## Unit tests only; no services needed.
unit:
	$(CARGO) test --lib --bins

## One full rotation against a local PostgreSQL through the fake control plane.
demo:
	$(CARGO) build --bin sikkerkey-agent --example demo
	$(SERVICES) --only postgres $(CARGO) run --quiet --example demo

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
