// An HTTP/2 cleartext client on x/net/http2 with prior knowledge, for the
// HTTP/2 fixtures and kernel tests. All requests share one connection.
// With -tls it speaks HTTP/2 over Go's crypto/tls instead (https URLs, ALPN
// h2, the certificate not checked).
//
//	h2c-client [-tls] [-parallel] [-H name:value]... [-X METHOD] [-d BODY] URL...
//
// With -parallel the requests are in flight at once (one stream each);
// otherwise one after the other. Prints "STATUS URL" per response.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/net/http2"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ",") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	var hdrs headers
	flag.Var(&hdrs, "H", "request header name:value (repeatable)")
	method := flag.String("X", "GET", "method")
	data := flag.String("d", "", "request body")
	parallel := flag.Bool("parallel", false, "send all requests at once")
	useTLS := flag.Bool("tls", false, "HTTP/2 over TLS (crypto/tls), certificate not checked")
	flag.Parse()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	if *useTLS {
		tr = &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	client := &http.Client{Transport: tr}
	do := func(url string) {
		var body io.Reader
		if *data != "" {
			body = strings.NewReader(*data)
		}
		req, err := http.NewRequest(*method, url, body)
		if err != nil {
			log.Fatal(err)
		}
		for _, h := range hdrs {
			name, value, _ := strings.Cut(h, ":")
			req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Printf("error %s %v\n", url, err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s\n", resp.StatusCode, url)
	}
	urls := flag.Args()
	if len(urls) == 0 {
		fmt.Fprintln(os.Stderr, "usage: h2c-client [-tls] [-parallel] [-H h:v] [-X M] [-d body] URL...")
		os.Exit(2)
	}
	if !*parallel {
		for _, u := range urls {
			do(u)
		}
	} else {
		// One request first, so the connection exists before the others share it.
		do(urls[0])
		var wg sync.WaitGroup
		for _, u := range urls[1:] {
			wg.Add(1)
			go func() { defer wg.Done(); do(u) }()
		}
		wg.Wait()
	}
	tr.CloseIdleConnections()
}
