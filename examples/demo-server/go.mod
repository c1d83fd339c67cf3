module github.com/otel-ebpf-receiver/otel-ebpf-receiver/examples/demo-server

go 1.22
