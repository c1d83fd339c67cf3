// mdatagen names the generated test package after the directory, and
// "collector-receiver" is no Go identifier: run it through a symlink named
// like the package.
//go:generate sh -c "d=$(mktemp -d) && ln -s \"$PWD\" \"$d/ebpfreceiver\" && mdatagen \"$d/ebpfreceiver/metadata.yaml\"; rc=$?; rm -rf \"$d\"; exit $rc"

// Package ebpfreceiver is an OpenTelemetry Collector receiver that loads eBPF
// probes through the otel-ebpf native library and forwards the telemetry they
// produce (OTLP batches) to the next consumers. All telemetry logic lives in
// the library; this package configures it, polls it and decodes its batches
// with pdata.
package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"
