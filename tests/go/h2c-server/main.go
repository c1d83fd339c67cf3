// An HTTP/2 cleartext (h2c) server on Go's net/http and x/net/http2/h2c, for
// the HTTP/2 fixtures (ebpf-core/tests/fixtures/http2) and kernel tests.
// It speaks h2c with prior knowledge and after an `Upgrade: h2c` request.
//
//	GET|POST /status/<code>  answers <code>
//	/reset                   resets the stream (RST_STREAM INTERNAL_ERROR)
//	anything else            200, "<method> <path> <body bytes>"
//
// It prints "listening on ADDR" once ready.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if code, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		n, err := strconv.Atoi(code)
		if err != nil || n < 200 || n > 599 {
			n = http.StatusBadRequest
		}
		w.WriteHeader(n)
		fmt.Fprintf(w, "%d\n", n)
		return
	}
	if r.URL.Path == "/reset" {
		// net/http turns this panic into a RST_STREAM on HTTP/2.
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %d\n", r.Method, r.URL.Path, len(body))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(handle), &http2.Server{})}
	log.Fatal(srv.Serve(ln))
}
