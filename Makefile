# berth — the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need (Debian packages, Go modules, base images) and are quick the
# second time: base images are cached by recipe hash and never rebuilt unchanged.

GO      ?= go
BIN     := bin/berth
# Base runtimes the tests need; `make test` bootstraps them once (cached by recipe hash).
TEST_RUNTIMES ?= shell python r

.PHONY: all build demo test test-go bench prereqs vet fmt clean sweep help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/berth
	@$(GO) build -o $(BIN) ./cmd/berth

prereqs: ## check Docker and install the host packages berth needs (debootstrap, busybox-static, chromium, docker-registry)
	@scripts/prereqs.sh

demo: prereqs build ## run the example Python block end to end
	@scripts/demo.sh

test: prereqs build ## run every test against the real Docker Engine
	@$(BIN) runtime bootstrap $(TEST_RUNTIMES)
	@$(BIN) sweep --tests
	@status=0; $(GO) test -p 2 -timeout 40m -count=1 ./... || status=$$?; \
	  $(BIN) sweep --tests >/dev/null 2>&1; exit $$status

bench: prereqs build ## compare berth with its baselines in the same run (prints P1, P3, P4, P5)
	@scripts/bench-prereqs.sh
	@$(BIN) runtime bootstrap shell python
	@$(BIN) bench

vet: ## go vet + gofmt check
	@$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

sweep: build ## remove containers, images and networks left by crashed tests
	@$(BIN) sweep --tests

clean: ## remove build output
	rm -rf bin examples/*/out
