package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/otlpdecode"
)

const (
	// pollTimeout bounds how long one poll blocks, so that the poller notices
	// a cancelled context even when the library is quiet.
	pollTimeout = 200 * time.Millisecond
	// minPollWait is the least time between two polls that found nothing.
	minPollWait = 10 * time.Millisecond
	transport   = "ebpf"
	format      = "protobuf"
)

// ebpfReceiver owns one native instance and forwards its batches to the
// consumers of every pipeline that names this receiver.
type ebpfReceiver struct {
	set        receiver.Settings
	cfg        *Config
	obs        *receiverhelper.ObsReport
	onShutdown func()

	consumersMu sync.RWMutex
	traces      consumer.Traces
	metrics     consumer.Metrics

	// decoder turns trace batches into pdata; only the poller uses it.
	decoder *otlpdecode.Traces

	mu       sync.Mutex // guards the lifecycle below
	inst     *native.Instance
	started  bool
	shutdown bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

var (
	_ receiver.Traces  = (*ebpfReceiver)(nil)
	_ receiver.Metrics = (*ebpfReceiver)(nil)
)

func newReceiver(set receiver.Settings, cfg *Config) (*ebpfReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              transport,
		LongLivedCtx:           true,
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &ebpfReceiver{set: set, cfg: cfg, obs: obs, decoder: otlpdecode.NewTraces()}, nil
}

func (r *ebpfReceiver) setTraces(next consumer.Traces) {
	r.consumersMu.Lock()
	defer r.consumersMu.Unlock()
	r.traces = next
}

func (r *ebpfReceiver) setMetrics(next consumer.Metrics) {
	r.consumersMu.Lock()
	defer r.consumersMu.Unlock()
	r.metrics = next
}

// Start creates the native instance, attaches the probes and starts the
// poller. A second call (another pipeline sharing this receiver) does nothing.
// Failures carry the library's message (missing privileges, no BTF, ...).
func (r *ebpfReceiver) Start(_ context.Context, host component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.shutdown:
		return errors.New("ebpf receiver: Start after Shutdown")
	case r.started:
		return nil
	}
	r.consumersMu.RLock()
	wantTraces, wantMetrics := r.traces != nil, r.metrics != nil
	r.consumersMu.RUnlock()
	cfgJSON, err := r.cfg.libraryJSON(wantTraces, wantMetrics)
	if err != nil {
		return fmt.Errorf("encoding the eBPF configuration: %w", err)
	}
	inst, err := native.New(cfgJSON)
	if err != nil {
		return fmt.Errorf("creating the eBPF instance: %w", err)
	}
	if err := inst.Start(); err != nil {
		_ = inst.Free()
		return fmt.Errorf("starting the eBPF probes: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.inst, r.cancel, r.started = inst, cancel, true
	r.wg.Add(1)
	go r.pollLoop(ctx, host)
	r.set.Logger.Info("eBPF probes attached",
		zap.String("library_version", native.Version()),
		zap.ByteString("config", cfgJSON))
	return nil
}

// Shutdown detaches every probe, lets the poller forward the final batches,
// and frees the instance. It is safe without Start and safe to call twice.
func (r *ebpfReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shutdown {
		return nil
	}
	r.shutdown = true
	if r.onShutdown != nil {
		r.onShutdown()
	}
	if !r.started {
		return nil
	}
	defer r.cancel()
	// Stop wakes the poller, which drains the remaining batches and exits.
	stopErr := r.inst.Stop()
	if stopErr != nil {
		r.cancel() // the poller would never hear "stopped": end it now
	}
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// Consumers are taking too long: abandon their work.
		r.cancel()
		<-done
	}
	if counters, err := r.inst.Counters(); err == nil {
		fields := make([]zap.Field, len(counters))
		for i, c := range counters {
			fields[i] = zap.Uint64(c.Name, c.Value)
		}
		r.set.Logger.Info("eBPF probes detached", fields...)
	} else {
		r.set.Logger.Warn("eBPF counters unreadable", zap.Error(err))
	}
	freeErr := r.inst.Free()
	r.inst = nil
	if err := errors.Join(stopErr, freeErr); err != nil {
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	return nil
}

// pollLoop forwards batches until the instance is stopped and drained, or ctx
// is cancelled. It waits for batches on the library's ready fd, parked in Go's
// netpoller, and polls without blocking: a poll that blocked inside the
// library would hold an OS thread in a cgo call, which the runtime's sysmon
// then has to watch and take the processor away from, and hand it back to,
// around every wait.
func (r *ebpfReceiver) pollLoop(ctx context.Context, host component.Host) {
	defer r.wg.Done()
	ready, err := r.inst.Ready()
	if err != nil {
		r.set.Logger.Warn("eBPF ready fd unavailable; polling with blocking calls", zap.Error(err))
	} else {
		defer ready.Close()
	}
	var clear [8]byte
	for ctx.Err() == nil {
		timeout := pollTimeout
		if ready != nil {
			timeout = 0
		}
		polled := time.Now()
		b, err := r.inst.Poll(timeout)
		switch {
		case errors.Is(err, native.ErrStopped):
			return
		case errors.Is(err, native.ErrInvalidHandle), errors.Is(err, native.ErrState), errors.Is(err, native.ErrPanic):
			err = fmt.Errorf("ebpf receiver: polling failed, no more telemetry: %w", err)
			r.set.Logger.Error("eBPF poller stopped", zap.Error(err))
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
			return
		case err != nil:
			r.set.Logger.Warn("eBPF poll failed", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(pollTimeout):
			}
		case b != nil:
			r.consume(ctx, b)
			b.Free()
		case ready != nil:
			// Nothing queued: sleep until the library says there is. The
			// deadline bounds how late a cancelled context is noticed.
			_ = ready.SetReadDeadline(time.Now().Add(pollTimeout))
			_, _ = ready.Read(clear[:])
		case time.Since(polled) < minPollWait:
			// Blocking polls answer "nothing yet" at once while the library
			// is starting or stopping: do not spin meanwhile.
			select {
			case <-ctx.Done():
			case <-time.After(minPollWait):
			}
		}
	}
}

// consume decodes one batch into pdata (traces with r.decoder, what it
// leaves and metrics with pdata's UnmarshalProto) and hands it to the
// pipelines of its signal. Batches of a signal that no pipeline wants are dropped.
func (r *ebpfReceiver) consume(ctx context.Context, b *native.Batch) {
	r.consumersMu.RLock()
	traces, metrics := r.traces, r.metrics
	r.consumersMu.RUnlock()

	var err error
	switch b.Signal {
	case native.SignalTraces:
		if traces == nil {
			return
		}
		octx := r.obs.StartTracesOp(ctx)
		n := 0
		var td ptrace.Traces
		if td, err = r.decoder.Decode(b.Data); err != nil {
			// Not the library's usual shape: pdata's general decoder.
			req := ptraceotlp.NewExportRequest()
			err = req.UnmarshalProto(b.Data)
			td = req.Traces()
		}
		if err == nil {
			n = td.SpanCount()
			err = traces.ConsumeTraces(octx, td)
		}
		r.obs.EndTracesOp(octx, format, n, err)
	case native.SignalMetrics:
		if metrics == nil {
			return
		}
		octx := r.obs.StartMetricsOp(ctx)
		req := pmetricotlp.NewExportRequest()
		n := 0
		if err = req.UnmarshalProto(b.Data); err == nil {
			md := req.Metrics()
			n = md.DataPointCount()
			err = metrics.ConsumeMetrics(octx, md)
		}
		r.obs.EndMetricsOp(octx, format, n, err)
	default:
		err = fmt.Errorf("unknown signal %v", b.Signal)
	}
	if err != nil {
		r.set.Logger.Warn("eBPF batch dropped", zap.Stringer("signal", b.Signal), zap.Int("bytes", len(b.Data)), zap.Error(err))
	}
}
