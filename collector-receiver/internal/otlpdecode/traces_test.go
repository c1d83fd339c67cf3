package otlpdecode

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// everyField is a batch with every field the fast path decodes, in two
// resources and scopes.
func everyField(t testing.TB) []byte {
	td := ptrace.NewTraces()
	for r := range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.37.0")
		rs.Resource().Attributes().PutStr("service.name", []string{"a", "b"}[r])
		rs.Resource().Attributes().PutInt("process.pid", int64(100+r))
		for sc := range 2 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl("https://example.test/schema")
			ss.Scope().SetName("otel-ebpf-receiver")
			ss.Scope().SetVersion([]string{"", "0.1.0"}[sc])
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(r)})
			s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(sc)})
			s.SetParentSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, 9})
			s.TraceState().FromRaw("ot=th:fd71")
			s.SetName("SELECT orders")
			s.SetKind(ptrace.SpanKindClient)
			s.SetStartTimestamp(5)
			s.SetEndTimestamp(6)
			s.SetFlags(0x301)
			s.SetDroppedAttributesCount(2)
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage("failed")
			a := s.Attributes()
			a.PutStr("url.path", "/users/7")
			a.PutStr("db.system.name", "postgresql")
			a.PutStr("", "empty key")
			a.PutStr("empty.value", "")
			a.PutInt("server.port", -5432)
			a.PutBool("gen_ai.request.stream", true)
			a.PutDouble("gen_ai.request.temperature", 0.25)
			a.PutEmpty("nothing")
			a.PutStr("long", string(bytes.Repeat([]byte("x"), 200)))
		}
		// A span with nothing set.
		rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

// pdataDecode is what UnmarshalProto makes of b, marshalled again.
func pdataDecode(t testing.TB, b []byte) ([]byte, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return nil, err
	}
	return req.MarshalProto()
}

func fastDecode(t testing.TB, d *Traces, b []byte) ([]byte, error) {
	td, err := d.Decode(b)
	if err != nil {
		return nil, err
	}
	return ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
}

// recorded reads a batch the library wrote (testdata/README.md).
func recorded(t testing.TB, name string) []byte {
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	var r io.Reader = f
	if filepath.Ext(name) == ".gz" {
		z, err := gzip.NewReader(f)
		require.NoError(t, err)
		r = z
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// The library's own batches decode on the fast path to exactly what
// UnmarshalProto makes of them: the same pdata, the same bytes once
// marshalled again.
func TestRecordedBatchesAsPdata(t *testing.T) {
	d := NewTraces()
	for name, spans := range map[string]int{"nginx-wrk.binpb.gz": 1024, "mixed-sampled.binpb": 111} {
		b := recorded(t, name)
		req := ptraceotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(b))
		want, err := req.MarshalProto()
		require.NoError(t, err)
		for range 2 { // the second time with every string interned
			td, err := d.Decode(b)
			require.NoError(t, err, "%s: the library's batch left the fast path", name)
			assert.Equal(t, spans, td.SpanCount(), name)
			assert.Equal(t, req.Traces(), td, name)
			got, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "%s: marshalled again, the bytes differ", name)
		}
	}
	// What the mixed batch holds, so that the comparison above covers it.
	td, err := d.Decode(recorded(t, "mixed-sampled.binpb"))
	require.NoError(t, err)
	states, errs, services := map[string]int{}, 0, map[string]bool{}
	for _, rs := range td.ResourceSpans().All() {
		name, _ := rs.Resource().Attributes().Get("service.name")
		services[name.Str()] = true
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				states[s.TraceState().AsRaw()]++
				if s.Status().Code() == ptrace.StatusCodeError {
					errs++
				}
			}
		}
	}
	assert.Equal(t, map[string]bool{"nginx": true, "demo": true}, services)
	assert.Len(t, states, 2, "%v", states)
	assert.Positive(t, states["ot=th:0"])
	assert.Positive(t, errs)
}

func TestAsPdata(t *testing.T) {
	d := NewTraces()
	for name, b := range map[string][]byte{
		"pdata's field order": nginxBatch(t, 100),
		"every field":         everyField(t),
		"empty":               {},
	} {
		want, err := pdataDecode(t, b)
		require.NoError(t, err, name)
		for range 2 { // the second time with every string interned
			got, err := fastDecode(t, d, b)
			require.NoError(t, err, name)
			assert.Equal(t, want, got, name)
		}
	}
	// Fields in another order than pdata writes them, a key after its value.
	kv := cat(lenField(2, lenField(1, []byte("GET!"))), lenField(1, []byte("key")))
	span := cat(lenField(9, kv), lenField(5, []byte("GET")), []byte{6 << 3, 2})
	b := lenField(1, lenField(2, lenField(2, span)))
	want, err := pdataDecode(t, b)
	require.NoError(t, err)
	got, err := fastDecode(t, d, b)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// What the fast path leaves to UnmarshalProto.
func TestLeavesTheUnusualToPdata(t *testing.T) {
	unusual := map[string]func(s ptrace.Span){
		"event":       func(s ptrace.Span) { s.Events().AppendEmpty().SetName("e") },
		"link":        func(s ptrace.Span) { s.Links().AppendEmpty().SetTraceID(pcommon.TraceID{1}) },
		"array value": func(s ptrace.Span) { s.Attributes().PutEmptySlice("a").AppendEmpty().SetStr("x") },
		"map value":   func(s ptrace.Span) { s.Attributes().PutEmptyMap("m").PutStr("k", "v") },
		"bytes value": func(s ptrace.Span) { s.Attributes().PutEmptyBytes("b").FromRaw([]byte{1}) },
	}
	for name, add := range unusual {
		td := ptrace.NewTraces()
		s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetName("x")
		add(s)
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		_, err = NewTraces().Decode(b)
		assert.ErrorIs(t, err, ErrUnusual, name)
	}
	// A repeated key (pdata keeps both) and bytes that are no protobuf.
	kv := cat(lenField(1, []byte("k")), lenField(2, lenField(1, []byte("v"))))
	dup := lenField(1, lenField(2, lenField(2, cat(lenField(9, kv), lenField(9, kv)))))
	for name, b := range map[string][]byte{"repeated key": dup, "garbage": {0xff, 0xff, 0xff}, "cut short": nginxBatch(t, 2)[:50]} {
		_, err := NewTraces().Decode(b)
		assert.ErrorIs(t, err, ErrUnusual, name)
	}
}

// lenField is a length-delimited protobuf field (payloads under 128 bytes).
func lenField(num int, p []byte) []byte {
	return append([]byte{byte(num<<3 | 2), byte(len(p))}, p...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The property the fast path keeps on any input: when it decodes, it
// decodes as UnmarshalProto does.
func FuzzDecode(f *testing.F) {
	f.Add(nginxBatch(f, 3))
	f.Add(everyField(f))
	f.Add(recorded(f, "mixed-sampled.binpb"))
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	d := NewTraces()
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := fastDecode(t, d, b)
		if err != nil {
			return
		}
		want, err := pdataDecode(t, b)
		require.NoError(t, err, "the fast path decoded what UnmarshalProto refuses")
		require.Equal(t, want, got)
	})
}

// ns, allocations and bytes per nginx span of a batch the library wrote:
// the fast path against UnmarshalProto. `go test -bench Decode -run ^$`.
func BenchmarkDecode(b *testing.B) {
	const spans = 1024
	data := recorded(b, "nginx-wrk.binpb.gz")
	b.Run("fast", func(b *testing.B) {
		d := NewTraces()
		perSpan(b, spans, func() {
			if _, err := d.Decode(data); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("pdata", func(b *testing.B) {
		perSpan(b, spans, func() {
			if err := ptraceotlp.NewExportRequest().UnmarshalProto(data); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// nginxBatch is a batch of nginx-like spans as pdata writes it (fields in
// its order, not the library's).
func nginxBatch(b testing.TB, spans int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	r := rs.Resource().Attributes()
	for k, v := range map[string]string{
		"service.name": "nginx", "service.instance.id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		"process.executable.name": "nginx", "process.executable.path": "/usr/sbin/nginx", "process.owner": "www-data",
		"host.name": "node-1", "host.id": "ec2d0d2b0e8b4f2e9c1f0e7d6c5b4a39", "telemetry.sdk.name": "otel-ebpf-receiver",
		"telemetry.sdk.language": "rust", "telemetry.sdk.version": "0.1.0",
	} {
		r.PutStr(k, v)
	}
	r.PutInt("process.pid", 12345)
	r.PutInt("process.parent_pid", 12344)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(i)})
		s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(i)})
		s.SetName("GET /")
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(1700000000000000000)
		s.SetEndTimestamp(1700000000000100000)
		s.Status().SetCode(ptrace.StatusCodeUnset)
		a := s.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("network.protocol.version", "1.1")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("url.path", "/")
		a.PutStr("url.scheme", "http")
		a.PutStr("http.route", "/")
		a.PutStr("server.address", "127.0.0.1")
		a.PutInt("server.port", 8080)
		a.PutStr("client.address", "127.0.0.1")
		a.PutStr("network.peer.address", "127.0.0.1")
		a.PutInt("network.peer.port", int64(40000+i))
	}
	data, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// perSpan runs b.N iterations of run, which handles `spans` spans, and
// reports time, the process's CPU time (GC workers included; on a busy
// machine the steadier figure), allocations and allocated bytes per span.
func perSpan(b *testing.B, spans int, run func()) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.StopTimer()
	cpu1 := cpuTime(b)
	runtime.ReadMemStats(&after)
	n := float64(b.N) * float64(spans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
	b.ReportMetric(float64(cpu1-cpu0)/n, "cpu-ns/span")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/span")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/span")
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// The fuzz property on 20,000 mutations of the seeds (bytes flipped,
// inserted, cut), so that every `go test` runs it.
func TestDecodeMutations(t *testing.T) {
	seeds := [][]byte{nginxBatch(t, 3), everyField(t)}
	d := NewTraces()
	state := uint64(0x9e3779b97f4a7c15)
	rnd := func(n int) int {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		return int(state % uint64(n))
	}
	decoded := 0
	for i := range 50000 {
		b := append([]byte(nil), seeds[i%len(seeds)]...)
		for range 1 + rnd(4) {
			if len(b) == 0 {
				break
			}
			switch at := rnd(len(b)); rnd(3) {
			case 0:
				b[at] ^= byte(1 << rnd(8))
			case 1:
				b = append(b[:at], append([]byte{byte(rnd(256))}, b[at:]...)...)
			default:
				b = b[:at]
			}
		}
		got, err := fastDecode(t, d, b)
		if err != nil {
			continue
		}
		decoded++
		want, err := pdataDecode(t, b)
		require.NoError(t, err, "the fast path decoded what UnmarshalProto refuses: %x", b)
		require.Equal(t, want, got, "%x", b)
	}
	t.Logf("%d of 50,000 mutations decoded by the fast path, all as UnmarshalProto", decoded)
}

// The receiver decodes straight from the library's memory and frees it
// after the pipelines took the batch: nothing decoded may point into it.
func TestDecodedKeepsNoReference(t *testing.T) {
	d := NewTraces()
	for _, name := range []string{"mixed-sampled.binpb", "nginx-wrk.binpb.gz"} {
		b := recorded(t, name)
		for range 2 { // interned strings the second time
			td, err := d.Decode(b)
			require.NoError(t, err)
			want := ptrace.NewTraces()
			td.CopyTo(want)
			for i := range b {
				b[i] = 0xa5
			}
			assert.Equal(t, want, td, "%s: a decoded span changed with the bytes it came from", name)
			b = recorded(t, name)
		}
	}
}
