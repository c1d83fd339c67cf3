package native

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	assert.NotEmpty(t, Version())
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []string{`not json`, `{"bogus_key": 1}`, `{"capture_size": 0}`} {
		_, err := New([]byte(cfg))
		require.Error(t, err, cfg)
		assert.ErrorIs(t, err, ErrConfig, cfg)
		var e *Error
		require.True(t, errors.As(err, &e))
		assert.NotEmpty(t, e.Message, "the library's message of %s", cfg)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	_, err := New([]byte(`{"bogus_key": 1}`))
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "bogus_key")
}

// The last error is per OS thread; concurrent failing calls each get theirs.
func TestLastErrorPerCall(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := New([]byte(fmt.Sprintf(`{"bogus_%d": 1}`, i)))
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), fmt.Sprintf("bogus_%d", i))
		}()
	}
	wg.Wait()
}

func TestStoppedLifecycleWithoutStart(t *testing.T) {
	inst, err := New([]byte(`{}`))
	require.NoError(t, err)
	_, err = inst.Poll(10 * time.Millisecond)
	assert.ErrorIs(t, err, ErrState)
	require.NoError(t, inst.Stop())
	require.NoError(t, inst.Stop())
	counters, err := inst.Counters()
	require.NoError(t, err)
	infos, err := Counters()
	require.NoError(t, err)
	require.Len(t, counters, len(infos))
	for k, c := range counters {
		assert.Equal(t, Counter{Name: infos[k].Name}, c, "an instance that never started counts nothing")
	}
	require.NoError(t, inst.Free())
	_, err = inst.Counters()
	assert.ErrorIs(t, err, ErrNull, "after Free the handle is gone")
}

func TestCounterList(t *testing.T) {
	infos, err := Counters()
	require.NoError(t, err)
	require.NotEmpty(t, infos)
	assert.Equal(t, CounterInfo{
		Name: "events_read", Kind: "counter", Unit: "{event}", Metric: "ebpf_receiver.events.read",
		Description: "Events read from the kernel ring buffers.",
	}, infos[0])
	for _, c := range infos {
		assert.Contains(t, []string{"counter", "gauge"}, c.Kind, c.Name)
	}
}

func TestConfigProblems(t *testing.T) {
	problems, err := ConfigProblems([]byte(`{}`))
	require.NoError(t, err)
	assert.Empty(t, problems)
	problems, err = ConfigProblems([]byte(`{"capture_size": 0, "bogus": true}`))
	require.NoError(t, err)
	require.Len(t, problems, 2)
	assert.Equal(t, "bogus", problems[0].Key)
	assert.Equal(t, Problem{Key: "capture_size", Message: "must be between 1 bytes and 4096 bytes, not 0 bytes"}, problems[1])
	// Larger than the first buffer: asked again with the size the library gave.
	defer func(n int) { problemsBuffer = n }(problemsBuffer)
	problemsBuffer = 16
	again, err := ConfigProblems([]byte(`{"capture_size": 0, "bogus": true}`))
	require.NoError(t, err)
	assert.Equal(t, problems, again)
}

func TestConfigDefaultsAndKeys(t *testing.T) {
	b, err := ConfigDefaults()
	require.NoError(t, err)
	assert.Contains(t, string(b), `"capture_size":1024`)
	keys, err := ConfigKeys()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	assert.Equal(t, "batch.max_spans", keys[0].Key)
}

// Configurations over the size limit are refused unread, with the limit in the message.
func TestConfigSizeLimit(t *testing.T) {
	at := []byte("{" + strings.Repeat(" ", MaxConfigBytes-2) + "}")
	problems, err := ConfigProblems(at)
	require.NoError(t, err)
	assert.Empty(t, problems)
	over := append([]byte("{ "), at[1:]...)
	problems, err = ConfigProblems(over)
	require.NoError(t, err)
	require.Len(t, problems, 1)
	assert.Contains(t, problems[0].Message, "at most 4194304")
}

// The ready fd is pollable by Go's netpoller (a read deadline works: an
// fd outside it would refuse one), stays quiet while nothing happens, and
// turns readable when the instance stops, after which Poll says so.
func TestReadyFileWakesOnStop(t *testing.T) {
	inst, err := New([]byte(`{}`))
	require.NoError(t, err)
	defer func() { require.NoError(t, inst.Free()) }()
	ready, err := inst.Ready()
	require.NoError(t, err)
	defer ready.Close()
	var buf [8]byte
	require.NoError(t, ready.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = ready.Read(buf[:])
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing happened: nothing to read")

	woke := make(chan error, 1)
	go func() {
		require.NoError(t, ready.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := ready.Read(buf[:])
		woke <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, inst.Stop())
	select {
	case err := <-woke:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the ready file did not wake the reader on Stop")
	}
	_, err = inst.Poll(0)
	assert.ErrorIs(t, err, ErrStopped)
	b := &Batch{Signal: SignalTraces, Data: []byte{1}}
	b.Free() // not the library's: nothing to free
	assert.Equal(t, []byte{1}, b.Data)
}
