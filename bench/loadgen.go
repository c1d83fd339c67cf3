//go:build ignore

// loadgen: the HTTP/1.1 clients the memory and loss benchmarks need, which
// wrk lacks: a fixed request rate, many idle keep-alive connections, and an
// exact number of short (one request) connections. Standard library only:
//
//	go build -o loadgen bench/loadgen.go
//
//	loadgen rate  -addr 127.0.0.1:8080 -rate 20000 -duration 10s [-conns 64]
//	    Keep-alive requests at a fixed rate, spread over -conns connections.
//	    Latency is measured from each request's scheduled time (no coordinated
//	    omission). Prints one JSON object.
//	loadgen hold  -addr 127.0.0.1:8080 -conns 10000
//	    Opens -conns connections, makes one request on each, prints
//	    "held N" and keeps them open until stdin closes; then prints JSON.
//	loadgen short -addr 127.0.0.1:8080 -count 1000000 [-conns 32]
//	    -count connections, one request each ("Connection: close"), -conns at
//	    a time. Prints one JSON object.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	addr     = flag.String("addr", "127.0.0.1:8080", "server host:port")
	path     = flag.String("path", "/", "request path")
	rate     = flag.Float64("rate", 1000, "rate: requests per second")
	duration = flag.Duration("duration", 10*time.Second, "rate: how long to send")
	conns    = flag.Int("conns", 64, "rate/short: concurrent connections; hold: connections to hold")
	count    = flag.Int("count", 100000, "short: connections to make")
	dialers  = flag.Int("dialers", 200, "hold: connections opened at a time")
)

func request(close bool) []byte {
	conn := "keep-alive"
	if close {
		conn = "close"
	}
	host, _, _ := net.SplitHostPort(*addr)
	return []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadgen\r\nConnection: %s\r\n\r\n", *path, host, conn))
}

// readResponse reads one response (head and a Content-Length body) and returns its status.
func readResponse(r *bufio.Reader) (int, error) {
	status, length := 0, -1
	for first := true; ; first = false {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		line = strings.TrimRight(line, "\r\n")
		if first {
			f := strings.Fields(line)
			if len(f) < 2 {
				return 0, fmt.Errorf("bad status line %q", line)
			}
			status, _ = strconv.Atoi(f[1])
			continue
		}
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "content-length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	_, err := io.CopyN(io.Discard, r, int64(length))
	return status, err
}

func emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func pct(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i]) / 1e3 // µs
}

func runRate() {
	req := request(false)
	period := float64(time.Second) / *rate
	total := int64(*rate * duration.Seconds())
	tokens := make(chan int64, 1<<16)
	var sent, ok, errs, late atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	// Requests still waiting for a connection this long after the sending
	// period are not sent: the client (or the server) could not keep up.
	stopAt := start.Add(*duration + 2*time.Second)
	go func() {
		defer close(tokens)
		for i := int64(0); i < total; {
			due := int64(float64(time.Since(start)) / period)
			for ; i < total && i <= due; i++ {
				tokens <- i
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	lats := make([][]int64, *conns)
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := net.Dial("tcp", *addr)
			if err != nil {
				errs.Add(1)
				return
			}
			defer c.Close()
			r := bufio.NewReaderSize(c, 16<<10)
			for i := range tokens {
				if time.Now().After(stopAt) {
					late.Add(1)
					continue
				}
				intended := start.Add(time.Duration(float64(i) * period))
				if d := time.Until(intended); d > 0 {
					time.Sleep(d)
				}
				if _, err := c.Write(req); err != nil {
					errs.Add(1)
					return
				}
				sent.Add(1)
				if st, err := readResponse(r); err != nil || st != 200 {
					errs.Add(1)
					return
				}
				ok.Add(1)
				lats[w] = append(lats[w], int64(time.Since(intended)))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []int64
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	emit(map[string]any{
		"mode": "rate", "target_rate": *rate, "scheduled": total, "sent": sent.Load(), "ok": ok.Load(),
		"errors": errs.Load(), "not_sent": late.Load(), "elapsed_s": elapsed,
		"achieved_rate": float64(ok.Load()) / duration.Seconds(),
		"p50_us": pct(all, 0.50), "p90_us": pct(all, 0.90), "p99_us": pct(all, 0.99), "p999_us": pct(all, 0.999),
		"max_us": pct(all, 1),
	})
}

func runHold() {
	req := request(false)
	held := make([]net.Conn, *conns)
	var ok, errs atomic.Int64
	sem := make(chan struct{}, *dialers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range held {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", *addr)
			if err != nil {
				errs.Add(1)
				return
			}
			if _, err := c.Write(req); err != nil {
				errs.Add(1)
				c.Close()
				return
			}
			if st, err := readResponse(bufio.NewReader(c)); err != nil || st != 200 {
				errs.Add(1)
				c.Close()
				return
			}
			held[i] = c
			ok.Add(1)
		}(i)
	}
	wg.Wait()
	fmt.Printf("held %d (errors %d) in %.1fs\n", ok.Load(), errs.Load(), time.Since(t0).Seconds())
	io.Copy(io.Discard, os.Stdin)
	closed := 0
	for _, c := range held {
		if c != nil {
			c.Close()
			closed++
		}
	}
	emit(map[string]any{"mode": "hold", "held": ok.Load(), "errors": errs.Load(), "closed": closed})
}

func runShort() {
	req := request(true)
	var next, ok, errs atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for next.Add(1) <= int64(*count) {
				c, err := net.Dial("tcp", *addr)
				if err != nil {
					errs.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				good := false
				if _, err := c.Write(req); err == nil {
					st, err := readResponse(bufio.NewReader(c))
					good = err == nil && st == 200
					// The server closes: wait for its FIN so that it, not
					// us, holds the TIME_WAIT (no ephemeral port exhaustion).
					if good {
						c.SetReadDeadline(time.Now().Add(5 * time.Second))
						for {
							if _, err := c.Read(buf); err != nil {
								break
							}
						}
					}
				}
				c.Close()
				if good {
					ok.Add(1)
				} else {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0).Seconds()
	emit(map[string]any{"mode": "short", "ok": ok.Load(), "errors": errs.Load(), "elapsed_s": el,
		"rate": float64(ok.Load()) / el})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen rate|hold|short [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	flag.CommandLine.Parse(os.Args[2:])
	switch mode {
	case "rate":
		runRate()
	case "hold":
		runHold()
	case "short":
		runShort()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}
