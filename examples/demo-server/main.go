// Command demo-server is a plain net/http server for the otel-ebpf demos and
// integration tests. It knows nothing about OpenTelemetry: the receiver sees
// its requests from the kernel.
//
//	demo-server -addr 127.0.0.1:8080 -sleep 100ms
//
// Every request waits -sleep, then answers 200 "Hello, <path>!".
// /status/404 and /status/500 answer with those codes instead. Paths under
// /chunked get the same body streamed with Transfer-Encoding: chunked.
// Connections are kept alive as net/http does by default.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/examples/demo-server/handler"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address, host:port ([::1]:port for IPv6)")
	sleep := flag.Duration("sleep", 100*time.Millisecond, "time every request waits before answering")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("demo-server: listen %s: %v", *addr, err)
	}
	srv := &http.Server{Handler: handler.New(*sleep), ReadHeaderTimeout: 10 * time.Second}

	done := make(chan struct{})
	go func() {
		defer close(done)
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	// The harness waits for this line (and for the port) before sending requests.
	log.Printf("demo-server: listening on %s (sleep %s)", ln.Addr(), *sleep)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("demo-server: %v", err)
	}
	<-done
}
