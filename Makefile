# poswitch — the two README commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/poswitch
PGTEST  := $(CURDIR)/var/pgtest
export GOFLAGS := -buildvcs=false

.PHONY: build run test fuzz bench vet clean stop-test-db tools

build:
	$(GO) build -o $(BIN) ./cmd/poswitch

# The whole stack on this machine: PostgreSQL in ./var/pg (created on first run as the postgres user,
# reused after), a development LMK in ./var/dev.lmk, the HSM, issuer simulators, the switch and a
# terminal simulator driving traffic. Ctrl-C stops it all.
run: build
	./$(BIN) demo --dir var

# Unit and integration tests, each against real parts. Tests share one PostgreSQL cluster under
# ./var/pgtest (started here if it is not running); each test gets its own database in it.
test: vet tools
	POSWITCH_TEST_PG_DIR=$(PGTEST) $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# A few seconds of coverage-guided fuzzing per target, on top of the seed corpora `go test` runs.
# Bounded by executions, not seconds: with a duration, Go 1.26's fuzz coordinator can fail a target
# with a bare "context deadline exceeded" when a busy machine starves its workers at the deadline
# (golang/go#75804, fixed in Go 1.27). 20,000 runs take ~1-7 s per target here.
FUZZTIME ?= 20000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    POSWITCH_TEST_PG_DIR=$(PGTEST) $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > var/fuzz-$$f.log 2>&1 || { cat var/fuzz-$$f.log; exit 1; }; \
	  done; \
	done

# The dynamic-QR test reads the PNG terminal-sim writes with an independent QR reader: zbarimg, from
# Debian's zbar-tools, installed here when missing.
tools:
	@command -v zbarimg >/dev/null || apt-get install -y -q zbar-tools >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q zbar-tools >/dev/null; }

vet:
	@mkdir -p var
	$(GO) vet ./...

# Throughput and latency figures, each path measured in one run and reported as ratios.
bench: build
	./$(BIN) bench --dir var

stop-test-db:
	-runuser -u postgres -- pg_ctl -D $(PGTEST)/data stop -m fast

clean:
	rm -rf bin
