// A franz-go Kafka client for the Kafka suites and fixture recordings. It
// uses the newest protocol versions the broker offers (flexible encodings,
// Fetch with topic IDs), as current Go services do.
//
//	client -brokers HOST:PORT -topic T produce N BATCH   N records, BATCH per produce request
//	client -brokers HOST:PORT -topic T -group G consume N   join G, read N records, commit, leave
//	client -brokers HOST:PORT -topic T errors           requests the broker must refuse
//
// Record values are "value-<i>"; keys "key-<i>". It prints one line per
// step and exits non-zero on any unexpected error.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "seed broker")
	topic := flag.String("topic", "orders", "topic")
	group := flag.String("group", "", "consumer group (consume)")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		die("usage: client [flags] produce N BATCH | consume N | errors")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(*brokers), kgo.ClientID("otel-ebpf-test-client"), kgo.AllowAutoTopicCreation()}
	if os.Getenv("KAFKA_CLIENT_DEBUG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	switch args[0] {
	case "produce":
		n, batch := num(args, 1), num(args, 2)
		cl := client(append(opts, kgo.ProducerLinger(time.Minute), kgo.DefaultProduceTopic(*topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		defer cl.Close()
		// Linger holds records until Flush: each batch goes out as one
		// record batch in one Produce request.
		var failed error
		for i := 0; i < n; i += batch {
			for j := i; j < i+batch && j < n; j++ {
				r := &kgo.Record{Key: []byte(fmt.Sprint("key-", j)), Value: []byte(fmt.Sprint("value-", j))}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						failed = err
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				die("flush: %v", err)
			}
			if failed != nil {
				die("produce: %v", failed)
			}
		}
		fmt.Printf("produced %d\n", n)
	case "consume":
		n := num(args, 1)
		cl := client(append(opts, kgo.ConsumeTopics(*topic), kgo.ConsumerGroup(*group),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
		got := 0
		for got < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				die("consume: %v", err)
			}
			got += fs.NumRecords()
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			die("commit: %v", err)
		}
		if err := cl.LeaveGroupContext(ctx); err != nil {
			die("leave: %v", err)
		}
		cl.Close()
		fmt.Printf("consumed %d\n", got)
	case "errors":
		cl := client(opts...)
		defer cl.Close()
		// Produce to a partition the topic does not have: UNKNOWN_TOPIC_OR_PARTITION.
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 5000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = *topic
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition = 7
		p.Records = batchBytes()
		t.Partitions = append(t.Partitions, p)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			die("produce request: %v", err)
		}
		fmt.Printf("produce to partition 7: %v\n", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
		// A heartbeat for a group this client never joined: UNKNOWN_MEMBER_ID
		// (or GROUP_ID_NOT_FOUND, as the broker decides).
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group = "no-such-group"
		hb.MemberID = "nobody"
		hb.Generation = 1
		hr, err := hb.RequestWith(ctx, cl)
		if err != nil {
			die("heartbeat request: %v", err)
		}
		fmt.Printf("heartbeat: %v\n", kerr.ErrorForCode(hr.ErrorCode))
	default:
		die("unknown command %q", args[0])
	}
}

// batchBytes is one valid record batch (v2) with one record, as franz-go
// itself would encode it.
func batchBytes() []byte {
	rec := kmsg.NewRecord()
	rec.Value = []byte("value-x")
	enc := rec.AppendTo(nil)
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.NumRecords = 1
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.Records = enc
	raw := b.AppendTo(nil)
	// Length and CRC are computed over the encoded batch.
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	crc := crc32c(raw[21:])
	b.CRC = int32(crc)
	return b.AppendTo(nil)
}

func client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die("client: %v", err)
	}
	return cl
}

func num(args []string, i int) int {
	if len(args) <= i {
		die("missing argument %d", i)
	}
	n, err := strconv.Atoi(args[i])
	if err != nil || n <= 0 {
		die("bad number %q", args[i])
	}
	return n
}

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "client: "+f+"\n", a...)
	os.Exit(1)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
