package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/metadata"
)

// NewFactory creates the factory of the ebpf receiver. Every pipeline that
// names the same receiver ID shares one native instance: the kernel probes
// are loaded once and each signal goes to its own pipelines.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := receivers.getOrCreate(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setTraces(next)
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := receivers.getOrCreate(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setMetrics(next)
	return r, nil
}
