// Command loadgen sends GET <base><i> for i in [0, n) over a few kept-alive
// connections and fails unless every answer is 200. The end-to-end tests run
// it as a child process, so that its requests have a resource of their own.
//
//	loadgen -base http://127.0.0.1:8080/users/ -n 10000 -conns 4
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("base", "", "URL prefix; the request number is appended")
	n := flag.Int("n", 1000, "requests")
	conns := flag.Int("conns", 4, "concurrent kept-alive connections")
	flag.Parse()
	if *base == "" || *n < 1 || *conns < 1 {
		flag.Usage()
		os.Exit(2)
	}

	client := &http.Client{
		// Proxy nil: never a proxy. Idle connections are reused, one per worker.
		Transport: &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns},
		Timeout:   10 * time.Second,
	}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				err := get(client, fmt.Sprintf("%s%d", *base, i))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("loadgen: %d requests, %d failed\n", *n, failed.Load())
	if err := firstErr.Load(); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: first failure: %v\n", err)
		os.Exit(1)
	}
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	// Read to the end, so that the connection is reused.
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
