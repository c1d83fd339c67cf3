// A Kafka wire-protocol broker for the Kafka suites and fixture recordings:
// franz-go's kfake, one broker on 127.0.0.1:PORT, topics created on first
// use with one partition. It prints "ready PORT" once it accepts
// connections and runs until killed.
//
//	broker -port 0
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free one)")
	partitions := flag.Int("partitions", 1, "partitions of auto-created topics")
	advertise := flag.Int("advertise-port", 0, "port told to clients in metadata (a recording relay's); 0: the listening one")
	flag.Parse()
	listen := net.Listen
	if *advertise != 0 {
		listen = func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			return advertised{ln, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *advertise}}, nil
		}
	}
	c, err := kfake.NewCluster(
		kfake.ListenFn(listen),
		kfake.Ports(*port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
		kfake.ClusterID("otel-ebpf-test"),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %s\n", c.ListenAddrs()[0])
	os.Stdout.Sync()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
}

// advertised is a listener that tells kfake (and so clients, in Metadata
// responses) another address than the one it listens on.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }
