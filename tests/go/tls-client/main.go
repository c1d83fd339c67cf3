// An HTTPS client on Go's net/http and crypto/tls, for tests/tests/go_tls.rs:
// one keep-alive connection to -addr, driven from stdin. Each line
// "<METHOD> <path>" makes one request (POST sends a small body) and prints
// "<status> <local port> <reused>", so a test can pace requests and know
// which connection carried them.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "server address")
	flag.Parse()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		MaxConnsPerHost:   1,
		ForceAttemptHTTP2: false,
		// A non-nil empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	client := &http.Client{Transport: tr}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		method, path, ok := strings.Cut(strings.TrimSpace(in.Text()), " ")
		if !ok {
			log.Fatalf("want <METHOD> <path>, got %q", in.Text())
		}
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("hello from the Go client")
		}
		var local string
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			local = info.Conn.LocalAddr().String()
			reused = info.Reused
		}}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		req, err := http.NewRequestWithContext(ctx, method, "https://"+*addr+path, body)
		if err != nil {
			log.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		// Read to the end so the connection is reused.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		_, port, _ := net.SplitHostPort(local)
		fmt.Printf("%d %s %t\n", resp.StatusCode, port, reused)
	}
}
