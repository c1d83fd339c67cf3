// Command chunked-server answers every GET with a 100,100-byte body sent with
// Transfer-Encoding: chunked (no Content-Length, more than net/http's 4 KiB
// response buffer), as servers streaming JSON, files or Prometheus pages do.
//
//	chunked-server -addr 127.0.0.1:8080
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	line := []byte(strings.Repeat("x", 1000) + "\n")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := 0; i < 100; i++ {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: *addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
