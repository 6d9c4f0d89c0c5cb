# depthcap: every command lives here; CI and the README call these targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO      ?= go
BIN     := $(CURDIR)/.bin
MODULES := pkg $(wildcard services/*)
SERVICES := spot-ws futures-ws rest-snapshotter writer uploader binance-sim depthcap
DATA_DIR ?= ./data
export DATA_DIR

.PHONY: all build test fmt-check vet unit acceptance lint proto bench bench-micro tidy-check clean run demo e2e interop help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build every service binary into .bin/ (also checks GOWORK=off builds)
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
		if [ -d services/$$s/cmd/$$s ]; then \
			echo "build $$s"; \
			(cd services/$$s && GOWORK=off $(GO) build -trimpath -o $(BIN)/$$s ./cmd/$$s); \
		fi; \
	done

test: fmt-check vet unit acceptance ## gofmt check, go vet, race tests of every module, heavy acceptance tests without -race

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.ci/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi

vet:
	$(GO) vet work

unit:
	$(GO) test -race -count=1 -timeout 20m work

# The heavy acceptance tests (>=100k-frame exact rows, kill -9 crash runs)
# are built without -race (files tagged !race) and run here.
acceptance:
	$(GO) test -count=1 -timeout 20m -run '^TestAcceptance' work

lint: ## golangci-lint v2 (pinned in .ci/tools) on every module
	@mkdir -p $(BIN)
	GOWORK=off $(GO) -C .ci/tools build -o $(BIN)/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	@for m in $(MODULES); do echo "lint $$m"; (cd $$m && $(BIN)/golangci-lint run --config $(CURDIR)/.golangci.yml ./...); done

proto: ## regenerate pkg/gen from proto/ with pinned buf and protoc-gen-go
	@mkdir -p $(BIN)
	GOWORK=off $(GO) -C .ci/tools build -o $(BIN)/buf github.com/bufbuild/buf/cmd/buf
	cd pkg && $(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	cd proto && PATH=$(BIN):$$PATH buf lint && PATH=$(BIN):$$PATH buf generate

tidy-check: ## go mod tidy leaves every module unchanged
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy); done
	git diff --exit-code -- '*/go.mod' '*/go.sum' 'services/*/go.mod' 'services/*/go.sum'

DEPTHCAP := $(BIN)/depthcap

$(DEPTHCAP): FORCE
	@mkdir -p $(BIN)
	cd services/depthcap && $(GO) build -o $(DEPTHCAP) ./cmd/depthcap

FORCE:

bench: $(DEPTHCAP) ## the whole pipeline's benchmark, seed50 and market scenarios, every service its own process (~10 min): bench/results/, README table
	$(DEPTHCAP) bench --scenario all --out bench/results --readme README.md

bench-micro: ## micro-benchmarks of the hot paths (-benchmem)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s work

run: $(DEPTHCAP) ## the whole pipeline in one process against Binance (DATA_DIR, DURATION, SYMBOLS, S3_*...)
	$(DEPTHCAP) run

# The demo seals a file per minute (WRITER_PERIOD=1m, WRITER_GRACE=5s
# unless set) so that Parquet files appear while you watch; make run keeps
# the daily files. Keep demo and real captures in separate DATA_DIRs: the
# writer refuses a checkpoint of another period.
demo: $(DEPTHCAP) ## the same, offline, against the embedded binance-sim (REPLAY=file.rec.gz, DEMO_FAULTS=1); files every minute
	WRITER_PERIOD=$${WRITER_PERIOD:-1m} WRITER_GRACE=$${WRITER_GRACE:-5s} $(DEPTHCAP) demo

e2e: ## end-to-end: every service as its own process under drops, skips, writer kill -9, NATS restart, S3 outage
	cd services/depthcap && $(GO) test -tags e2e -count=1 -timeout 15m -v -run TestE2E ./e2e/

interop: $(DEPTHCAP) ## nodejs-polars and DuckDB read imported recordings: rows, types, values vs raw frames and vs each other (needs node >= 20, npm)
	DEPTHCAP=$(DEPTHCAP) bash services/writer/interop/run.sh

clean:
	rm -rf $(BIN)
