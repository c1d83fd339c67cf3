# Entry points. `make run` and `make test` are the whole set-up on a fresh
# Debian machine: both install what is missing first (see `deps`).
SHELL := /bin/bash
CARGO ?= cargo
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib

.PHONY: all deps build lib header docs run test test-rust test-collector lint fmt clean bench fuzz-smoke

all: build

# System packages the build and the tests need; idempotent and quick when present.
deps:
	@scripts/deps.sh

build: deps lib

# The static library (and its committed header) that every host links.
lib:
	$(CARGO) build --release -p otel-ebpf-ffi

# Regenerate the committed C header (a test fails when it drifts).
header:
	OTEL_EBPF_UPDATE_HEADER=1 $(CARGO) test -p otel-ebpf-ffi --test header

# Regenerate the README tables generated from the library's declarations
# (self-telemetry counters, configuration keys); tests fail when they drift.
docs: lib
	OTEL_EBPF_UPDATE_README=1 $(CARGO) test -p ebpf-core --test readme
	cd collector-receiver && OTEL_EBPF_UPDATE_README=1 CGO_ENABLED=1 $(GO) test -count=1 -run '^TestREADME' .

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The kernel tests whose subject is the data path (capture, addresses,
# roles, ends, TLS ties, selection in the probes), run a second time on the
# syscall-tracepoint fallback (kernels 5.15-6.2): ~6 minutes. Tests of what
# sits above the probes (faults, clock steps, GenAI, privacy, the protocol
# suites) and the C ABI, sanitizer, embedding and start/stop-cycle tests run
# once, on the default path: make test stays within its 45 minutes.
SYSCALL_PATH_TESTS := concurrent data_path go_server go_tls io_uring ipv6 keepalive \
	nginx no_file_io roles selection tls udp

test-rust: deps lib
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=1
	OTEL_EBPF_TEST_DATA_PATH=syscall $(CARGO) test -p integration-tests --no-fail-fast \
		$(addprefix --test ,$(SYSCALL_PATH_TESTS)) -- --test-threads=1

test: deps lint test-rust test-collector fuzz-smoke

# A short bounded fuzzing run of every target; FUZZ_SECONDS=3600 for a real one.
fuzz-smoke: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-8} scripts/fuzz.sh

# Benchmarks (root): userspace pipeline on recorded events, each protocol
# parser on recorded connections, overhead on real servers under wrk (the
# library alone, then through dist/otelcol-ebpf with its pipelines, against
# the OpenTelemetry Go SDK), memory (RSS, BPF maps; the collector too), the
# zero-loss request rate, one pass of the flows iterator over 10,000
# connections and what flows hold in memory per socket of the host (10,000
# and 100,000 connections, both ends reported). Results go to BENCHMARKS.md by hand, with the command.
bench: deps dist
	$(CARGO) bench -p ebpf-core --bench pipeline
	$(CARGO) bench -p ebpf-core --bench protocols
	python3 bench/overhead.py --rounds 5 --duration 5
	python3 bench/collector.py --rounds 5 --duration 5
	python3 bench/memory.py
	python3 bench/loss.py
	$(CARGO) run --release -q -p ebpf-core --example flow_pass -- 10000
	$(CARGO) run --release -q -p ebpf-core --example flow_pass -- 10000 memory
	$(CARGO) run --release -q -p ebpf-core --example flow_pass -- 100000 memory

clean:
	$(CARGO) clean
	rm -rf dist

-include mk/*.mk
