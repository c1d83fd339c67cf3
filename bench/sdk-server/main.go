// Command sdk-server is the demo server (examples/demo-server's handler)
// instrumented the way an application team would do it by hand: the
// OpenTelemetry Go SDK, otelhttp around the handler, a batch span processor
// and an OTLP/gRPC exporter. bench/collector.py runs it beside the plain
// demo server traced by otelcol-ebpf, both sending to the same sink
// collector, so users can compare the two costs per request.
//
//	sdk-server -addr 127.0.0.1:8080 -otlp 127.0.0.1:4317
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

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/examples/demo-server/handler"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	otlp := flag.String("otlp", "127.0.0.1:4317", "OTLP/gRPC endpoint of the collector (plaintext)")
	sleep := flag.Duration("sleep", 0, "time every request waits before answering")
	flag.Parse()

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(*otlp), otlptracegrpc.WithInsecure())
	if err != nil {
		log.Fatalf("sdk-server: exporter: %v", err)
	}
	// The SDK's defaults: a batch span processor (queue 2048, batches of
	// 512, every 5 s) and every span sampled.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("sdk-server"))),
	)
	otel.SetTracerProvider(tp)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("sdk-server: listen %s: %v", *addr, err)
	}
	srv := &http.Server{Handler: otelhttp.NewHandler(handler.New(*sleep), "server"), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("sdk-server: listening on %s, spans to %s", ln.Addr(), *otlp)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("sdk-server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tp.Shutdown(ctx)
}
