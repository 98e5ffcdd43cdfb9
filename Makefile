# make run   builds the binaries and runs pipeline.hcl against the built-in sandbox,
#            writing Parquet under data/
# make test  runs every test (unit and end-to-end), with a throwaway PostgreSQL
#            server on loopback (scripts/with-postgres.sh; set PIPEHOST_TEST_PG_DSN to use another),
#            a throwaway S3-compatible server (scripts/with-s3.sh, versitygw) and DuckDB
#            (scripts/with-duckdb.sh) to read the Parquet files back, and Chromium
#            (scripts/with-chromium.sh) to load serve's status page

GO      ?= go
BIN     := bin
BINS    := $(BIN)/pipeline $(BIN)/nuorder-plugin

.PHONY: all build static run test vet fmt clean bench

all: build

build:
	$(GO) build -o $(BIN)/ ./pipeline ./plugins/nuorder-plugin

# make static  the binaries the container image holds, into bin/static/: the plugin without cgo,
#              the host with cgo (DuckDB) linked statically, so both run on an empty base
static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/static/ ./plugins/nuorder-plugin
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo -ldflags "-s -w -linkmode external -extldflags -static" -o $(BIN)/static/ ./pipeline

run: build
	$(BIN)/pipeline run --sandbox -f pipeline.hcl

test:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./sinks/duckdb
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	scripts/with-postgres.sh scripts/with-s3.sh scripts/with-duckdb.sh scripts/with-chromium.sh $(GO) test -count=1 -timeout 30m -parallel 4 ./...

clean:
	rm -rf $(BIN) data

# make bench  builds the binaries (and the in-process host) and measures the orders path at
#             BENCH_SIZES orders (see bench/main.go); prints one RESULT line per size
BENCH_SIZES ?= 100000,1000000
bench: build
	$(GO) build -tags inprocess -o $(BIN)/pipeline-inprocess ./pipeline
	$(GO) build -o $(BIN)/bench ./bench
	scripts/with-duckdb.sh $(BIN)/bench -bin $(BIN) -sizes $(BENCH_SIZES)
