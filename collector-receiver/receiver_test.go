package ebpfreceiver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/metadata"
	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
)

func settings(name string) receiver.Settings {
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, name)
	return set
}

func TestShutdownWithoutStart(t *testing.T) {
	f := NewFactory()
	set := settings("no_start")
	cfg := f.CreateDefaultConfig()
	tr, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	for _, c := range []component.Component{tr, mr} {
		require.NoError(t, c.Shutdown(context.Background()))
	}
	// After Shutdown a Start is refused rather than loading probes nobody stops.
	require.Error(t, tr.Start(context.Background(), componenttest.NewNopHost()))
}

func TestOneReceiverPerID(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig()
	ctx := context.Background()
	a := settings("shared")
	tr, err := f.CreateTraces(ctx, a, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mr, err := f.CreateMetrics(ctx, a, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.Same(t, tr, mr)

	other, err := f.CreateTraces(ctx, settings("other"), cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotSame(t, tr, other)

	// Shutdown forgets the receiver: a reloaded configuration gets a new one.
	require.NoError(t, tr.Shutdown(ctx))
	require.NoError(t, mr.Shutdown(ctx))
	again, err := f.CreateTraces(ctx, a, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotSame(t, tr, again)
	require.NoError(t, again.Shutdown(ctx))
	require.NoError(t, other.Shutdown(ctx))
}

// A configuration the library refuses (Go validation bypassed) fails Start
// with the library's own message, fetched on the failing call's thread.
func TestStartReportsLibraryError(t *testing.T) {
	cfg := validConfig()
	cfg.RingBufferSize = 5000
	r, err := NewFactory().CreateTraces(context.Background(), settings("bad_config"), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.ErrorIs(t, err, native.ErrConfig)
	assert.Contains(t, err.Error(), "ring_buffer_size")
	require.NoError(t, r.Shutdown(context.Background()))
}

func newTestReceiver(t *testing.T, traces *consumertest.TracesSink, metrics *consumertest.MetricsSink) *ebpfReceiver {
	t.Helper()
	r, err := newReceiver(settings("decode"), validConfig())
	require.NoError(t, err)
	if traces != nil {
		r.setTraces(traces)
	}
	if metrics != nil {
		r.setMetrics(metrics)
	}
	return r
}

func TestConsumeDecodesEverySignal(t *testing.T) {
	traces, metrics := new(consumertest.TracesSink), new(consumertest.MetricsSink)
	r := newTestReceiver(t, traces, metrics)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "demo-server")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("GET")
	span.SetKind(ptrace.SpanKindServer)
	span.Attributes().PutInt("http.response.status_code", 200)
	tb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)

	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.1)
	mb, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)

	ctx := context.Background()
	r.consume(ctx, &native.Batch{Signal: native.SignalTraces, Data: tb})
	r.consume(ctx, &native.Batch{Signal: native.SignalMetrics, Data: mb})
	// Garbage and unknown signals (3 is reserved for logs) are dropped, never forwarded.
	r.consume(ctx, &native.Batch{Signal: native.SignalTraces, Data: []byte{0xff, 0xff, 0xff}})
	r.consume(ctx, &native.Batch{Signal: native.Signal(3), Data: tb})
	r.consume(ctx, &native.Batch{Signal: native.Signal(9), Data: tb})

	require.Len(t, traces.AllTraces(), 1)
	got := traces.AllTraces()[0].ResourceSpans().At(0)
	name, _ := got.Resource().Attributes().Get("service.name")
	assert.Equal(t, "demo-server", name.Str())
	assert.Equal(t, "GET", got.ScopeSpans().At(0).Spans().At(0).Name())
	assert.Equal(t, 1, metrics.DataPointCount())
}

func TestConsumeWithoutPipelineDrops(t *testing.T) {
	traces := new(consumertest.TracesSink)
	r := newTestReceiver(t, traces, nil)
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	mb, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	r.consume(context.Background(), &native.Batch{Signal: native.SignalMetrics, Data: mb})
	assert.Empty(t, traces.AllTraces())
}

func TestConsumerErrorIsNotFatal(t *testing.T) {
	r, err := newReceiver(settings("refusing"), validConfig())
	require.NoError(t, err)
	r.setTraces(consumertest.NewErr(errors.New("refused")))
	tb, err := ptraceotlp.NewExportRequestFromTraces(ptrace.NewTraces()).MarshalProto()
	require.NoError(t, err)
	r.consume(context.Background(), &native.Batch{Signal: native.SignalTraces, Data: tb})
}

// The tests below load the real probes: they need root and a kernel with BTF.

func requireRoot(t *testing.T) {
	t.Helper()
	if !isRoot() {
		t.Skip("loading eBPF probes needs root")
	}
}

func TestStartTwiceAndShutdownTwice(t *testing.T) {
	requireRoot(t)
	f := NewFactory()
	set := settings("start_twice")
	cfg := f.CreateDefaultConfig()
	tr, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	host := componenttest.NewNopHost()

	start := time.Now()
	require.NoError(t, tr.Start(context.Background(), host))
	require.NoError(t, mr.Start(context.Background(), host)) // the second pipeline: no second instance
	assert.Less(t, time.Since(start), 10*time.Second, "Start must return quickly")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tr.Shutdown(ctx))
	require.NoError(t, mr.Shutdown(ctx))
}

// What the generated lifecycle test would do (metadata.yaml says why it is
// skipped there): per signal, create, Start, Shutdown, then again with a
// second receiver of the same ID, with the default configuration.
func TestLifecycleLikeGenerated(t *testing.T) {
	requireRoot(t)
	factory := NewFactory()
	for _, tt := range []struct {
		name     string
		createFn func(ctx context.Context, set receiver.Settings, cfg component.Config) (component.Component, error)
	}{
		{"metrics", func(ctx context.Context, set receiver.Settings, cfg component.Config) (component.Component, error) {
			return factory.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
		}},
		{"traces", func(ctx context.Context, set receiver.Settings, cfg component.Config) (component.Component, error) {
			return factory.CreateTraces(ctx, set, cfg, consumertest.NewNop())
		}},
	} {
		t.Run(tt.name+"-lifecycle", func(t *testing.T) {
			cfg := factory.CreateDefaultConfig()
			host := componenttest.NewNopHost()
			for range 2 {
				r, err := tt.createFn(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg)
				require.NoError(t, err)
				require.NoError(t, r.Start(context.Background(), host))
				require.NoError(t, r.Shutdown(context.Background()))
			}
		})
	}
}

// consume decodes batches straight from the library's memory, which is
// freed right after: pdata must keep no reference into the bytes it
// decoded. Every kind of field the library writes is checked after the
// buffer is overwritten.
func TestUnmarshalKeepsNoReference(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "nginx")
	rs.Resource().Attributes().PutInt("process.pid", 42)
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.37.0")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otel-ebpf-receiver")
	span := ss.Spans().AppendEmpty()
	span.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	span.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	span.TraceState().FromRaw("ot=th:fd7")
	span.SetName("GET /users/{id}")
	span.Attributes().PutStr("url.path", "/users/7")
	span.Attributes().PutEmptyBytes("bytes").FromRaw([]byte{9, 9})
	span.Attributes().PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr("stop")
	span.Status().SetMessage("failed")
	tb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)

	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetUnit("s")
	dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
	dp.Attributes().PutStr("http.route", "/users/{id}")
	dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	mb, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)

	treq := ptraceotlp.NewExportRequest()
	buf := append([]byte(nil), tb...)
	require.NoError(t, treq.UnmarshalProto(buf))
	mreq := pmetricotlp.NewExportRequest()
	mbuf := append([]byte(nil), mb...)
	require.NoError(t, mreq.UnmarshalProto(mbuf))
	for i := range buf {
		buf[i] = 0xa5
	}
	for i := range mbuf {
		mbuf[i] = 0xa5
	}
	again, err := treq.MarshalProto()
	require.NoError(t, err)
	assert.Equal(t, tb, again, "a decoded trace changed with the bytes it came from")
	againM, err := mreq.MarshalProto()
	require.NoError(t, err)
	assert.Equal(t, mb, againM, "a decoded metric changed with the bytes it came from")
}

// A trace batch the fast decoder leaves to pdata (a span event, a repeated
// attribute key) is forwarded as UnmarshalProto decodes it.
func TestConsumeUnusualTraces(t *testing.T) {
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("with an event")
	s.Events().AppendEmpty().SetName("exception")
	withEvent, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	// resource_spans { scope_spans { span { attributes {k: "v"} attributes {k: "v"} } } }
	kv := []byte{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, 'v'}
	span := append(append([]byte{0x4a, byte(len(kv))}, kv...), append([]byte{0x4a, byte(len(kv))}, kv...)...)
	repeated := append([]byte{0x0a, byte(len(span) + 4), 0x12, byte(len(span) + 2), 0x12, byte(len(span))}, span...)
	for _, b := range [][]byte{withEvent, repeated} {
		want := ptraceotlp.NewExportRequest()
		require.NoError(t, want.UnmarshalProto(b))
		traces := new(consumertest.TracesSink)
		r := newTestReceiver(t, traces, nil)
		r.consume(context.Background(), &native.Batch{Signal: native.SignalTraces, Data: b})
		require.Len(t, traces.AllTraces(), 1)
		assert.Equal(t, want.Traces(), traces.AllTraces()[0])
	}
}
