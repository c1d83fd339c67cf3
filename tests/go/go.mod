module github.com/otel-ebpf-receiver/otel-ebpf-receiver/tests/go

go 1.22
