# gavel — the two commands that matter are `make run` and `make test`.
GO        ?= go
BIN       := bin/gavel
PKGS      := ./...
FUZZTIME  ?= 10s
BENCHTIME ?= 2s
LOAD_DURATION ?= 10s
LOAD_SINGLE   ?= 5s
# ANSWER_TOKENS: make every fake upstream answer this many words, streamed one per chunk
# (0: its short 4-chunk reply)
ANSWER_TOKENS ?= 0
# GAVELS: the gavel binaries bench-load measures, comma-separated (e.g. an old build and bin/gavel)
GAVELS        ?= $(BIN)

.PHONY: run build test test-agents unit rego deploy-check lint fmt bench bench-go bench-load bench-cache drill fuzz clean

## run: the gateway on the embedded default bundle (offline: the built-in mock provider)
run:
	$(GO) run ./cmd/gavel serve $(ARGS)

build:
	$(GO) build -o $(BIN) ./cmd/gavel

## test: everything — lint, Go tests (race detector on), Rego policy tests, deployment files
test: lint unit rego deploy-check

## test-agents: real coding agents (Claude Code and Codex from npm) driven headless through gavel
test-agents:
	cd test/agents && npm ci --no-audit --no-fund
	$(GO) test -tags agents -count=1 -timeout 10m -run 'Headless|TestAgent' ./test/

unit:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# gavel's tester gates on coverage of policy files (tests excluded); stock `opa test` must
# agree on every result.
rego:
	$(GO) run ./cmd/gavel policy fmt -l --fail policies
	$(GO) run ./cmd/gavel policy check policies bundles
	$(GO) run ./cmd/gavel policy test --coverage --threshold 90 --properties 200 policies bundles
	$(GO) tool opa test --timeout 2m policies/ bundles/

# The Dockerfile and Kubernetes manifests, decoded into the Kubernetes API types offline. Its
# own module (deploy/validate), so the gateway's go.mod does not carry k8s.io/api; it uses
# the gateway's packages through a replace, and -mod=mod records a dependency the gateway
# gained since its go.sum was last tidied instead of failing on it.
deploy-check:
	cd deploy/validate && GOFLAGS=-mod=mod $(GO) vet ./... && GOFLAGS=-mod=mod $(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: Go micro-benchmarks, then the loopback load benchmark (direct, the floor proxy, gavel)
bench: bench-go bench-load

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./engine/... ./adapters/...

# The system under test (the floor proxy, then each gavel) gets core 1 to itself; the load
# generator and the fake upstream share core 0, so "CPU µs/req" is the system's alone and
# "x floor" compares gavel with an echo + net/http relay measured in the same run.
bench-load: build
	$(GO) build -o bin/loadbench ./test/loadbench
	taskset -c 0 bin/loadbench -gavel $(GAVELS) -duration $(LOAD_DURATION) -cpus 1 -upstream-cpus 0 -stream -single $(LOAD_SINGLE) -answer-tokens $(ANSWER_TOKENS)

## bench-cache: bench-load's runs plus cache hits against misses in one gavel process with
## exact caching on (CPU µs/req and their ratio; issue 15 wants a hit ≤ 50 % of a miss).
bench-cache: build
	$(GO) build -o bin/loadbench ./test/loadbench
	taskset -c 0 bin/loadbench -gavel $(GAVELS) -duration $(LOAD_DURATION) -cpus 1 -upstream-cpus 0 -stream -cache -no-floor -answer-tokens $(ANSWER_TOKENS)

## drill: the whole drill suite in its long form (more requests, a 60 s soak), then its
## table; `make test` runs the short form. See docs/reliability.md.
drill:
	DRILL_LONG=1 $(GO) test -count=1 -timeout 10m -v -run 'Drill' ./test/drills/

## fuzz: run every fuzz target briefly (corpus kept in each package's testdata/fuzz)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
