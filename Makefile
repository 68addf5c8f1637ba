# cloudkey. `make run` serves on embedded defaults; `make test` installs what
# the tests need (redis-server, the code generators) and runs every check CI runs.
SHELL := /bin/bash
BIN   := $(CURDIR)/bin
GO    ?= go

.PHONY: run test deps tools gen check-gen lint vet fmt-check unit bench

run:
	$(GO) run ./cmd/cloudkey

test: deps tools fmt-check vet lint check-gen unit

# Debian: the tests start their own redis-server on a free loopback port,
# and drive Debian's chromium headless for the guest page.
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (needed by the tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@redis-server --version
	@/usr/bin/chromium --version 2>/dev/null || true

# Code generators and buf, versions pinned by go.mod / tools/go.mod.
tools: $(BIN)/buf $(BIN)/protoc-gen-go
$(BIN)/protoc-gen-go: go.mod
	GOBIN=$(BIN) $(GO) install tool
	@touch $@
$(BIN)/buf: tools/go.mod
	cd tools && GOBIN=$(BIN) $(GO) install tool
	@touch $@

gen: tools
	$(BIN)/buf generate

# Fails when gen/ is not what `buf generate` makes from proto/.
check-gen: tools
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(BIN)/buf generate -o $$tmp && \
	diff -r $$tmp/gen gen >/dev/null || { echo "gen/ is stale: run 'make gen' and commit"; diff -r $$tmp/gen gen | head -20; exit 1; }
	@echo "gen/ is up to date"

lint: tools
	$(BIN)/buf lint

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/') 2>&1); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
