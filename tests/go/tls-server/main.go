// An HTTPS server on Go's net/http and crypto/tls, for tests/tests/go_tls.rs:
// its plaintext is captured at crypto/tls.(*Conn).Read/Write.
//
//	GET|POST /status/<code>  answers <code>
//	anything else            200, "<method> <path> <body bytes>"
//
// HTTP/1.1 only, unless -h2 (then HTTP/2 too, by ALPN: what Go clients pick).
// With -offsets it prints the struct field offsets the probes assume, read
// from its own DWARF, and exits.
package main

import (
	"crypto/tls"
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
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
	fmt.Fprintf(w, "%s %s %d\n", r.Method, r.URL.Path, len(body))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	cert := flag.String("cert", "", "PEM certificate")
	key := flag.String("key", "", "PEM private key")
	offsets := flag.Bool("offsets", false, "print the field offsets the probes assume and exit")
	h2 := flag.Bool("h2", false, "offer HTTP/2 (ALPN h2) besides HTTP/1.1")
	flag.Parse()
	if *offsets {
		printOffsets()
		return
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(handle),
		// A non-nil empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	if *h2 {
		srv.TLSNextProto = nil
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go-tls-server: listening on %s\n", ln.Addr())
	log.Fatal(srv.ServeTLS(ln, *cert, *key))
}

// printOffsets prints {"<struct>.<field>": offset} for the fields
// ebpf-probes/bpf/gotls.bpf.c walks, from this executable's DWARF.
func printOffsets() {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		log.Fatal(err)
	}
	d, err := f.DWARF()
	if err != nil {
		log.Fatal(err)
	}
	want := map[string][]string{
		"crypto/tls.Conn":  {"conn"},
		"runtime.iface":    {"data"},
		"net.TCPConn":      {"conn"},
		"net.conn":         {"fd"},
		"net.netFD":        {"pfd"},
		"internal/poll.FD": {"Sysfd"},
		"runtime.g":        {"stack"},
		"runtime.stack":    {"lo", "hi"},
	}
	out := map[string]int64{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			log.Fatal(err)
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue // its children are the types
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		fields, ok := want[name]
		if e.Tag != dwarf.TagStructType || !ok {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		delete(want, name)
		for {
			c, err := r.Next()
			if err != nil {
				log.Fatal(err)
			}
			if c == nil || c.Tag == 0 {
				break
			}
			field, _ := c.Val(dwarf.AttrName).(string)
			for _, w := range fields {
				if c.Tag == dwarf.TagMember && field == w {
					off, _ := c.Val(dwarf.AttrDataMemberLoc).(int64)
					out[name+"."+field] = off
				}
			}
			if c.Children {
				r.SkipChildren()
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		log.Fatal(err)
	}
}
