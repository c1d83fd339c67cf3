// Package native is the only cgo code of the receiver: a thin, typed wrapper
// over the C ABI of the Rust static library (ffi/include/otel_ebpf.h). It holds
// no telemetry logic; it moves OTLP protobuf bytes from Rust to Go.
package native

/*
#cgo CFLAGS: -I${SRCDIR}/../../../ffi/include
#cgo LDFLAGS: ${SRCDIR}/../../../target/release/libotel_ebpf.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

#include <stdlib.h>
#include "otel_ebpf.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Result codes of the C ABI (ffi/src/error.rs). Values are stable.
const (
	resultOK            = 0
	resultTimeout       = 1
	resultStopped       = 2
	resultNull          = 3
	resultInvalidHandle = 4
	resultConfig        = 5
	resultState         = 6
	resultStart         = 7
	resultPanic         = 8
)

// MaxConfigBytes is the largest JSON configuration the library accepts
// (OTEL_EBPF_MAX_CONFIG_BYTES, 4 MiB); longer ones are ErrConfig.
const MaxConfigBytes = C.OTEL_EBPF_MAX_CONFIG_BYTES

// Signal says which OTLP export request a batch holds.
type Signal uint32

// Signals of the C ABI (otel_ebpf_signal; 3 is reserved for logs).
const (
	SignalNone    Signal = 0
	SignalTraces  Signal = 1
	SignalMetrics Signal = 2
)

func (s Signal) String() string {
	switch s {
	case SignalTraces:
		return "traces"
	case SignalMetrics:
		return "metrics"
	default:
		return fmt.Sprintf("signal(%d)", uint32(s))
	}
}

// Sentinel errors, one per failing result code; errors.Is works on every
// *Error this package returns.
var (
	ErrNull          = errors.New("NULL argument")
	ErrInvalidHandle = errors.New("invalid handle")
	ErrConfig        = errors.New("invalid configuration")
	ErrState         = errors.New("invalid state")
	ErrStart         = errors.New("start failed")
	ErrPanic         = errors.New("library panicked")
	ErrUnknown       = errors.New("unknown result code")
)

// ErrStopped is returned by Poll once the instance was stopped and drained.
var ErrStopped = errors.New("instance stopped")

// Error is a failed library call: its result code and the library's message.
type Error struct {
	Op      string // the C function, e.g. "otel_ebpf_start"
	Code    uint32
	Message string // otel_ebpf_last_error of the failing call
}

// Error is the library's message alone (it says what failed and why), or the
// function and result code when the library gave none.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %v", e.Op, e.Unwrap())
	}
	return e.Message
}

// Unwrap maps the result code to its sentinel error.
func (e *Error) Unwrap() error {
	switch e.Code {
	case resultNull:
		return ErrNull
	case resultInvalidHandle:
		return ErrInvalidHandle
	case resultConfig:
		return ErrConfig
	case resultState:
		return ErrState
	case resultStart:
		return ErrStart
	case resultPanic:
		return ErrPanic
	default:
		return ErrUnknown
	}
}

// call runs fn, which makes exactly one C call, and turns a failing result
// into an *Error carrying the library's message. The last error is
// thread-local on the Rust side, so the goroutine stays on one OS thread for
// the call and the message fetch.
func call(op string, fn func() C.uint32_t) (uint32, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code := uint32(fn())
	switch code {
	case resultOK, resultTimeout, resultStopped:
		return code, nil
	}
	return code, &Error{Op: op, Code: code, Message: lastError()}
}

// lastError reads the calling OS thread's last error message.
func lastError() string {
	n := C.otel_ebpf_last_error(nil, 0)
	if n == 0 {
		return ""
	}
	buf := make([]byte, int(n)+1)
	C.otel_ebpf_last_error((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return string(buf[:n])
}

// Version is the library version, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.otel_ebpf_version())
}

// Instance is one native receiver instance: probes, pipeline and queue.
// Its methods may be called from several goroutines; Free must be the last call.
type Instance struct {
	ptr *C.otel_ebpf_instance
}

// New creates a stopped instance from the library's JSON configuration.
func New(configJSON []byte) (*Instance, error) {
	cfg := C.CString(string(configJSON))
	defer C.free(unsafe.Pointer(cfg))
	var ptr *C.otel_ebpf_instance
	_, err := call("otel_ebpf_new", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_new(cfg, &ptr))
	})
	if err != nil {
		return nil, err
	}
	return &Instance{ptr: ptr}, nil
}

// Problem is one problem the library found in a configuration: the dotted
// path of its key (library names: "batch.timeout_ms", "genai.providers[0].name";
// empty for the whole document) and what is wrong.
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

// problemsBuffer is the first buffer ConfigProblems offers: most answers fit.
var problemsBuffer = 64 << 10

// ConfigProblems asks the library for every problem of configJSON, without
// creating anything; none means it is valid.
func ConfigProblems(configJSON []byte) ([]Problem, error) {
	cfg := C.CString(string(configJSON))
	defer C.free(unsafe.Pointer(cfg))
	buf := make([]byte, problemsBuffer)
	for {
		var n C.size_t
		code, err := call("otel_ebpf_config_problems", func() C.uint32_t {
			return C.uint32_t(C.otel_ebpf_config_problems(cfg, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n))
		})
		if err != nil && code != resultConfig {
			return nil, err
		}
		if int(n) >= len(buf) { // it did not fit: the library said how long it is
			buf = make([]byte, int(n)+1)
			continue
		}
		var problems []Problem
		if err := json.Unmarshal(buf[:n], &problems); err != nil {
			return nil, fmt.Errorf("otel_ebpf_config_problems: %w", err)
		}
		return problems, nil
	}
}

// staticJSON is one of the library's static JSON strings.
func staticJSON(op string, s *C.char) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("%s: the library could not make it (a bug)", op)
	}
	return []byte(C.GoString(s)), nil
}

// ConfigDefaults is the library's default configuration, as JSON with every key.
func ConfigDefaults() ([]byte, error) {
	return staticJSON("otel_ebpf_config_defaults", C.otel_ebpf_config_defaults())
}

// ConfigKey describes one key of the library's configuration
// (otel_ebpf_config_keys).
type ConfigKey struct {
	Key         string `json:"key"`
	Type        string `json:"type"`
	Unit        string `json:"unit"`
	Default     any    `json:"default"`
	Description string `json:"description"`
	Minimum     any    `json:"minimum"`
	Maximum     any    `json:"maximum"`
	MaxItems    any    `json:"max_items"`
	ItemMinimum any    `json:"item_minimum"`
	ItemMaximum any    `json:"item_maximum"`
	Values      []any  `json:"values"`
}

// ConfigKeys lists every key of the library's configuration, sorted by key.
func ConfigKeys() ([]ConfigKey, error) {
	b, err := staticJSON("otel_ebpf_config_keys", C.otel_ebpf_config_keys())
	if err != nil {
		return nil, err
	}
	var keys []ConfigKey
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("otel_ebpf_config_keys: %w", err)
	}
	return keys, nil
}

// CounterInfo describes one of the library's counters (otel_ebpf_counters).
type CounterInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // "counter" (a total) or "gauge" (a current value)
	Unit        string `json:"unit"`
	Metric      string `json:"metric"`
	Description string `json:"description"`
}

// Counters lists the library's counters, in the order Instance.Counters
// reads them.
var Counters = sync.OnceValues(func() ([]CounterInfo, error) {
	b, err := staticJSON("otel_ebpf_counters", C.otel_ebpf_counters())
	if err != nil {
		return nil, err
	}
	var list []CounterInfo
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("otel_ebpf_counters: %w", err)
	}
	return list, nil
})

// Start checks privileges and kernel features, loads and attaches the probes
// and starts the pipeline. It returns quickly.
func (i *Instance) Start() error {
	_, err := call("otel_ebpf_start", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_start(i.ptr))
	})
	return err
}

// Batch is one batch of telemetry: the OTLP protobuf bytes of one export
// request. Data is the library's memory, not copied: it is valid until Free,
// and nothing may keep a reference to it (pdata's UnmarshalProto copies what
// it keeps: TestUnmarshalKeepsNoReference).
type Batch struct {
	Signal Signal
	Data   []byte
	handle *C.otel_ebpf_batch
}

// Free hands the batch's memory back to the library; Data is unusable after.
// Free on a batch Poll did not return (a literal) does nothing.
func (b *Batch) Free() {
	if b.handle != nil {
		C.otel_ebpf_batch_free(b.handle)
		b.handle, b.Data = nil, nil
	}
}

// Poll waits up to timeout for the next batch (0: does not wait; see Ready).
// It returns (nil, nil) on timeout and (nil, ErrStopped) once the instance is
// stopped and drained. The caller frees the batch.
func (i *Instance) Poll(timeout time.Duration) (*Batch, error) {
	ms := timeout.Milliseconds()
	if ms < 0 {
		ms = 0
	} else if ms > 0xFFFFFFFF {
		ms = 0xFFFFFFFF
	}
	// One call: the batch, its signal and its bytes.
	var info C.otel_ebpf_batch_info
	code, err := call("otel_ebpf_poll_batch", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_poll_batch(i.ptr, C.uint32_t(ms), &info))
	})
	switch {
	case err != nil:
		return nil, err
	case code == resultTimeout:
		return nil, nil
	case code == resultStopped:
		return nil, ErrStopped
	}
	b := &Batch{Signal: Signal(info.signal), handle: info.batch}
	if info.len > 0 {
		b.Data = unsafe.Slice((*byte)(unsafe.Pointer(info.data)), int(info.len))
	}
	return b, nil
}

// Ready is a file that becomes readable when Poll may have something new (a
// batch, or the end after Stop): a poller waits on it in Go's netpoller
// (a Read parks the goroutine, not an OS thread), reads it to clear it, then
// calls Poll(0) until there is nothing left. The file is a copy of the
// library's eventfd, owned by the caller (close it when done).
func (i *Instance) Ready() (*os.File, error) {
	var fd C.int
	if _, err := call("otel_ebpf_ready_fd", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_ready_fd(i.ptr, &fd))
	}); err != nil {
		return nil, err
	}
	// The library owns its fd (closed by Free); this copy is ours. The
	// eventfd is non-blocking, so os.NewFile registers it with the netpoller.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating the ready fd: %w", err)
	}
	return os.NewFile(uintptr(dup), "otel-ebpf-ready"), nil
}

// Stop detaches every probe, flushes pending telemetry into final batches and
// wakes pollers, which then drain them and get ErrStopped. Stopping twice, or
// before Start, is allowed.
func (i *Instance) Stop() error {
	_, err := call("otel_ebpf_stop", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_stop(i.ptr))
	})
	return err
}

// Free stops the instance if needed and releases it. No other method may run
// concurrently with or after Free.
func (i *Instance) Free() error {
	_, err := call("otel_ebpf_free", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_free(i.ptr))
	})
	i.ptr = nil
	return err
}

// Counter is one counter's value.
type Counter struct {
	Name  string
	Value uint64
}

// Counters reads the instance's counters, in the order of Counters().
func (i *Instance) Counters() ([]Counter, error) {
	infos, err := Counters()
	if err != nil {
		return nil, err
	}
	values := make([]C.uint64_t, len(infos)+1)
	var n C.size_t
	if _, err := call("otel_ebpf_counters_get", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_counters_get(i.ptr, &values[0], C.size_t(len(values)), &n))
	}); err != nil {
		return nil, err
	}
	if int(n) != len(infos) {
		return nil, fmt.Errorf("otel_ebpf_counters_get: %d values for %d counters", n, len(infos))
	}
	out := make([]Counter, len(infos))
	for k, info := range infos {
		out[k] = Counter{Name: info.Name, Value: uint64(values[k])}
	}
	return out, nil
}
