// Package collector holds the end-to-end tests of the otelcol-ebpf
// distribution: they start the real dist/otelcol-ebpf (make dist) as root,
// drive real servers (the Go demo server, python3 -m http.server, nginx) with
// curl, and check the OTLP JSON that the file exporter writes.
//
//	make test-collector      # or, after make dist:
//	cd tests/collector && go test -count=1 -v ./...
//
// OTELCOL_EBPF_BIN overrides the binary (default ../../dist/otelcol-ebpf).
package collector
