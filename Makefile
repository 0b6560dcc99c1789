# `make` installs and builds (cheap when nothing changed); `make test` runs every test.
SHELL := /bin/sh
NPM ?= npm
SOURCES := $(shell find src test bench proto scripts -type f \( -name '*.ts' -o -name '*.proto' -o -name '*.mjs' \) ! -path 'src/wire/gen/*' 2>/dev/null)

.PHONY: all build test test-scale lint demo bench clean

all: build

node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
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
	sh scripts/demo.sh

bench: build
	$(NPM) run --silent bench -- $(BENCH_ARGS)

clean:
	rm -rf dist src/wire/gen node_modules/.installed
