// mdatagen names the generated test package after the directory, and
// "collector-receiver" is no Go identifier: run it through a symlink named
// like the package. ($DOLLAR is go generate's "$": it expands $NAME itself.)
//go:generate sh -c "d=$DOLLAR(mktemp -d) && ln -s \"$DOLLAR{PWD}\" \"$DOLLAR{d}/ebpfreceiver\" && mdatagen \"$DOLLAR{d}/ebpfreceiver/metadata.yaml\"; rc=$DOLLAR?; rm -rf \"$DOLLAR{d}\"; exit $DOLLAR{rc}"

// Package ebpfreceiver is an OpenTelemetry Collector receiver that loads eBPF
// probes through the otel-ebpf native library and forwards the telemetry they
// produce (OTLP batches) to the next consumers. All telemetry logic lives in
// the library; this package configures it, polls it and decodes its batches
// with pdata.
package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"
