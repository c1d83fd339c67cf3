// Package handler is the demo server's HTTP handler, shared by the plain
// demo server (examples/demo-server) and the benchmark's copy instrumented
// with the OpenTelemetry Go SDK (bench/sdk-server), so that both answer the
// same requests with the same work.
package handler

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// New answers every request after waiting sleep: 200 "Hello, <path>!";
// /status/404 and /status/500 with those codes; paths under /chunked with
// the same body streamed in three flushed pieces (Transfer-Encoding: chunked).
func New(sleep time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sleep > 0 {
			time.Sleep(sleep)
		}
		code := http.StatusOK
		body := fmt.Sprintf("Hello, %s!\n", r.URL.Path)
		if rest, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			if n, err := strconv.Atoi(rest); err == nil && (n == 404 || n == 500) {
				code = n
				body = fmt.Sprintf("%d %s\n", n, http.StatusText(n))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if strings.HasPrefix(r.URL.Path, "/chunked") {
			// Same body, streamed in three flushed pieces: net/http then
			// uses Transfer-Encoding: chunked instead of Content-Length.
			w.WriteHeader(code)
			for _, piece := range []string{"Hello, ", r.URL.Path, "!\n"} {
				_, _ = w.Write([]byte(piece))
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	})
}
