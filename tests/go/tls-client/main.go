// An HTTPS client on Go's net/http and crypto/tls, for tests/tests/go_tls.rs:
// one keep-alive connection to -addr, driven from stdin. Each line
// "<METHOD> <path>" makes one request (POST sends a small body) and prints
// "<status> <local port> <reused>", so a test can pace requests and know
// which connection carried them.
//
// "STACKS <n>" instead opens a connection of its own (crypto/tls, no
// net/http) and sends GET /stacks/<i> for i in [0, n), each written by a new
// goroutine from i calls deep, so that for some i (*tls.Conn).Write is the
// function that finds the fresh goroutine stack full: it then calls
// runtime.morestack and starts again from its first instruction. It prints
// "<responses with status 200> <local port> false".
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
	"strconv"
	"strings"
)

// deep calls itself n times, then f: each level takes a small frame of the
// goroutine's stack.
//
//go:noinline
func deep(n int, f func()) {
	if n == 0 {
		f()
		return
	}
	deep(n-1, f)
}

// stacks: see the package comment.
func stacks(addr string, n int) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	ok := 0
	for i := 0; i < n; i++ {
		// Converted here: a conversion in the goroutine would be the call
		// that meets the full stack, just before Write.
		req := []byte(fmt.Sprintf("GET /stacks/%d HTTP/1.1\r\nHost: %s\r\n\r\n", i, addr))
		done := make(chan error)
		go deep(i, func() {
			_, err := conn.Write(req)
			done <- err
		})
		if err := <-done; err != nil {
			log.Fatal(err)
		}
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
	}
	_, port, _ := net.SplitHostPort(conn.LocalAddr().String())
	fmt.Printf("%d %s false\n", ok, port)
}

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
		if method == "STACKS" {
			n, err := strconv.Atoi(path)
			if err != nil {
				log.Fatal(err)
			}
			stacks(*addr, n)
			continue
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
