package ebpfreceiver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const helperPathEnv = "OTEL_EBPF_TEST_HELPER_PATH"

// TestHelperHTTPProcess is not a test: TestRealLibraryBatch runs it in a child
// process (the library never traces its own process) to serve and make one
// HTTP request.
func TestHelperHTTPProcess(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		t.Skip("helper process of TestRealLibraryBatch")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "Hello, %s!", r.URL.Path)
	}))
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	srv.Close()
	os.Exit(0)
}

// TestRealLibraryBatch loads the real probes, has a child process make one HTTP
// request, and checks that its span arrives decoded.
func TestRealLibraryBatch(t *testing.T) {
	requireRoot(t)
	sink := new(consumertest.TracesSink)
	cfg := validConfig()
	cfg.Batch.Timeout = 200 * time.Millisecond
	r, err := NewFactory().CreateTraces(context.Background(), settings("real"), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
	}()

	path := fmt.Sprintf("/otel-ebpf-receiver-test/%d", time.Now().UnixNano())
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHTTPProcess$")
	cmd.Env = append(os.Environ(), helperPathEnv+"="+path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helper process: %s", out)

	var found ptrace.Span
	require.Eventually(t, func() bool {
		for _, td := range sink.AllTraces() {
			for i := 0; i < td.ResourceSpans().Len(); i++ {
				ss := td.ResourceSpans().At(i).ScopeSpans()
				for j := 0; j < ss.Len(); j++ {
					spans := ss.At(j).Spans()
					for k := 0; k < spans.Len(); k++ {
						s := spans.At(k)
						if v, ok := s.Attributes().Get("url.path"); ok && v.Str() == path && s.Kind() == ptrace.SpanKindServer {
							found = s
							return true
						}
					}
				}
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "no server span for %s among %d spans", path, sink.SpanCount())
	assert.Equal(t, "GET /otel-ebpf-receiver-test/{id}", found.Name(), "named by the heuristic route")
	status, ok := found.Attributes().Get("http.response.status_code")
	require.True(t, ok, "http.response.status_code missing: %v", found.Attributes().AsRaw())
	assert.EqualValues(t, 200, status.Int())
}
