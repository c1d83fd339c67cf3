// A go-redis client for the Redis suite (tests/tests/kv.rs): SET, GET, GET
// of a missing key, INCR of a string (an error), GET of another missing key
// on one connection (a pool of one), then a pipeline of -n INCRs, which
// go-redis runs on a connection of its own (its dedicated pipeline pool),
// and prints what it got.
// Maintenance notifications (a Redis Enterprise feature) are off: in their
// default "auto" mode, Redis 7.0's refusal makes go-redis dial again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "server address")
	key := flag.String("key", "go:k", "key prefix")
	n := flag.Int("n", 10, "INCRs in the pipeline")
	flag.Parse()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{
		Addr:                     *addr,
		PoolSize:                 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	defer rdb.Close()
	must(rdb.Set(ctx, *key, "go-secret-value", 0).Err())
	v, err := rdb.Get(ctx, *key).Result()
	must(err)
	_, err = rdb.Get(ctx, *key+":missing").Result()
	if !errors.Is(err, redis.Nil) {
		fail(fmt.Errorf("GET of a missing key: %v", err))
	}
	if rdb.Incr(ctx, *key).Err() == nil {
		fail(errors.New("INCR of a string succeeded"))
	}
	if _, err = rdb.Get(ctx, *key+":missing2").Result(); !errors.Is(err, redis.Nil) {
		fail(fmt.Errorf("GET of a missing key: %v", err))
	}
	pipe := rdb.Pipeline()
	for i := 0; i < *n; i++ {
		pipe.Incr(ctx, *key+":counter")
	}
	cmds, err := pipe.Exec(ctx)
	must(err)
	fmt.Println(v, len(cmds), cmds[len(cmds)-1].(*redis.IntCmd).Val())
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
