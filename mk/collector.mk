# The collector distribution (dist/otelcol-ebpf), its example run and its tests.
# Included by the top-level Makefile; run from the repository root.
#
#   make dist            build dist/otelcol-ebpf (ocb + cgo + the Rust static lib)
#   make run             build, then run it with examples/otelcol-ebpf.yaml (needs root)
#   make test-collector  Go unit tests of collector-receiver, then the end-to-end tests

GO ?= go
# One collector release for everything: keep in step with builder-config.yaml.
OCB_VERSION := v0.155.0
OCB_DIR = $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin
OCB ?= $(OCB_DIR)/builder

DIST := dist/otelcol-ebpf
DIST_SRC := dist/build
STATIC_LIB := target/release/libotel_ebpf.a
RECEIVER_SRCS = $(shell find collector-receiver -name '*.go' -not -name '*_test.go' 2>/dev/null) \
	collector-receiver/go.mod collector-receiver/go.sum ffi/include/otel_ebpf.h
RUN_CONFIG ?= examples/otelcol-ebpf.yaml
E2E_TIMEOUT ?= 20m

# `go mod tidy` (run by ocb) also resolves the test-only dependencies of the
# contrib modules, some of which the module proxy may not serve; -e lets it
# carry on, since nothing built needs them. Keep whatever GOFLAGS are set.
OCB_GOFLAGS = -e $(shell $(GO) env GOFLAGS)

.PHONY: dist ocb collector-unit-tests collector-e2e-tests

# Installs the pinned ocb when it is missing or another version.
ocb:
	@$(OCB) version 2>&1 | grep -qx 'ocb version $(OCB_VERSION)' || { \
		echo "installing ocb $(OCB_VERSION)"; \
		GOBIN=$(dir $(OCB)) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION); }

# `lib` (cargo) decides whether the static library changes; a sub-make then
# compares timestamps, so that nothing is rebuilt when nothing changed.
dist: deps lib
	@$(MAKE) --no-print-directory $(DIST)

# Generated sources: only when the manifest or the receiver's module changes.
$(DIST_SRC)/go.mod: builder-config.yaml collector-receiver/go.mod collector-receiver/go.sum
	@$(MAKE) --no-print-directory ocb
	@mkdir -p $(DIST_SRC)
	GOFLAGS="$(OCB_GOFLAGS)" $(OCB) --config builder-config.yaml --skip-compilation
	@touch $@

# Compiled as ocb would (`--skip-compilation` left that to us). The old binary
# is removed first: Go does not track the static library named in #cgo LDFLAGS.
$(DIST): $(DIST_SRC)/go.mod $(RECEIVER_SRCS) $(STATIC_LIB)
	@rm -f $@
	cd $(DIST_SRC) && CGO_ENABLED=1 $(GO) build -trimpath -ldflags='-s -w' -o $(CURDIR)/$@ .
	@echo "built $@"

run: dist
	./$(DIST) --config $(RUN_CONFIG)

# Unit tests first, then the end-to-end tests against an up-to-date dist.
test-collector: deps lib
	@$(MAKE) --no-print-directory collector-unit-tests
	@$(MAKE) --no-print-directory $(DIST)
	@$(MAKE) --no-print-directory collector-e2e-tests

# The two halves of test-collector, without its prerequisites.
# -count=1: Go's test cache cannot see the static library change.
collector-unit-tests:
	@bad=$$(gofmt -l collector-receiver); [ -z "$$bad" ] || { echo "gofmt needed: $$bad"; exit 1; }
	cd collector-receiver && CGO_ENABLED=1 $(GO) vet ./...
	cd collector-receiver && CGO_ENABLED=1 $(GO) test -count=1 -v ./...

collector-e2e-tests:
	@bad=$$(gofmt -l tests/collector); [ -z "$$bad" ] || { echo "gofmt needed: $$bad"; exit 1; }
	cd tests/collector && $(GO) vet ./...
	cd tests/collector && OTELCOL_EBPF_BIN=$(CURDIR)/$(DIST) $(GO) test -count=1 -v -timeout $(E2E_TIMEOUT) ./...
