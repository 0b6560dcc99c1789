# `make` installs and builds (cheap when nothing changed); `make test` runs every test.
SHELL := /bin/sh
NPM ?= npm
SOURCES := $(shell find src test bench proto scripts -type f \( -name '*.ts' -o -name '*.proto' -o -name '*.mjs' -o -name '*.cjs' \) ! -path 'src/wire/gen/*' 2>/dev/null)

.PHONY: all build test test-scale lint demo bench clean

all: build

# better-sqlite3 (the tracker's --store) has no prebuilt binary for this machine that can be
# fetched here: npm compiles it from source with node-gyp (python3, make, g++), ~2 minutes.
node_modules/.installed: package.json package-lock.json
	@echo "make: installing dependencies (npm ci); better-sqlite3 is compiled from source with node-gyp if no prebuilt binary can be fetched (about 2 minutes)"
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@node -e "require('better-sqlite3')" 2>/dev/null || { \
	  echo "make: better-sqlite3 was not built by npm ci (install scripts skipped?); building it now with node-gyp (about 2 minutes)"; \
	  $(NPM) rebuild better-sqlite3 --loglevel=error; }
	@node -e "require('better-sqlite3')" || { echo "make: better-sqlite3 does not load: it needs python3, make and g++ to build" >&2; exit 1; }
	@echo "make: dependencies ready (better-sqlite3 loads)"
	@touch $@

dist/.built: node_modules/.installed tsconfig.json $(SOURCES)
	$(NPM) run --silent build
	@touch $@

build: dist/.built

lint: node_modules/.installed
	$(NPM) run --silent lint

test: build lint
	$(NPM) test

# Swarms of 64 and 128 peers (slow on a small machine; see docs/tracker.md for the times).
test-scale: build
	$(NPM) run --silent test:scale

demo: build
	sh scripts/demo.sh && sh scripts/demo-accounts.sh

bench: build
	$(NPM) run --silent bench -- $(BENCH_ARGS)

clean:
	rm -rf dist src/wire/gen node_modules/.installed
