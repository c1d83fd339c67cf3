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
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"
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

// Signals of the C ABI (otel_ebpf_signal).
const (
	SignalNone    Signal = 0
	SignalTraces  Signal = 1
	SignalMetrics Signal = 2
	SignalLogs    Signal = 3
)

func (s Signal) String() string {
	switch s {
	case SignalTraces:
		return "traces"
	case SignalMetrics:
		return "metrics"
	case SignalLogs:
		return "logs"
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

// CheckConfig asks the library whether it accepts configJSON, without loading
// anything into the kernel.
func CheckConfig(configJSON []byte) error {
	inst, err := New(configJSON)
	if err != nil {
		return err
	}
	return inst.Free()
}

// Start checks privileges and kernel features, loads and attaches the probes
// and starts the pipeline. It returns quickly.
func (i *Instance) Start() error {
	_, err := call("otel_ebpf_start", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_start(i.ptr))
	})
	return err
}

// Batch is one batch of telemetry: the OTLP protobuf bytes of one export
// request, copied into Go memory (the native batch is already freed).
type Batch struct {
	Signal Signal
	Data   []byte
}

// Poll waits up to timeout for the next batch. It returns (nil, nil) on
// timeout and (nil, ErrStopped) once the instance is stopped and drained.
func (i *Instance) Poll(timeout time.Duration) (*Batch, error) {
	ms := timeout.Milliseconds()
	if ms < 0 {
		ms = 0
	} else if ms > 0xFFFFFFFF {
		ms = 0xFFFFFFFF
	}
	var b *C.otel_ebpf_batch
	code, err := call("otel_ebpf_poll", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_poll(i.ptr, C.uint32_t(ms), &b))
	})
	switch {
	case err != nil:
		return nil, err
	case code == resultTimeout:
		return nil, nil
	case code == resultStopped:
		return nil, ErrStopped
	}
	defer C.otel_ebpf_batch_free(b)
	sig := Signal(C.otel_ebpf_batch_signal(b))
	var data *C.uint8_t
	var n C.size_t
	if _, err := call("otel_ebpf_batch_data", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_batch_data(b, &data, &n))
	}); err != nil {
		return nil, err
	}
	out := &Batch{Signal: sig}
	if n > 0 {
		out.Data = C.GoBytes(unsafe.Pointer(data), C.int(n))
	}
	return out, nil
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

// Stats are the counters of an instance (otel_ebpf_stats).
type Stats struct {
	EventsRead     uint64
	EventsLost     uint64 // events the kernel dropped (ring buffer or tables full)
	SpansExported  uint64
	BatchesDropped uint64
	ParseErrors    uint64
	Connections    uint64 // a gauge
	DecodeErrors   uint64 // kernel events userspace could not decode
	SpansDropped   uint64 // spans inside the dropped batches
	StreamGaps     uint64 // holes in connections' event numbering (events lost mid-stream)
	RequestsLost   uint64 // requests dropped unanswered because of those holes
	Processes      uint64 // processes traced, a gauge
	TLSLibraries   uint64 // files whose TLS functions carry uprobes
	// TLSAttachErrors are TLS functions whose uprobes the kernel refused.
	TLSAttachErrors uint64
	// TLSNoSocket is TLS plaintext the kernel dropped: its socket was unknown.
	TLSNoSocket     uint64
	GenAICalls      uint64 // LLM API calls recognised
	GenAIIncomplete uint64 // of those, calls whose bodies were not read in full
}

// Stats reads the instance's counters.
func (i *Instance) Stats() (Stats, error) {
	var s C.otel_ebpf_stats
	if _, err := call("otel_ebpf_stats_get_sized", func() C.uint32_t {
		return C.uint32_t(C.otel_ebpf_stats_get_sized(i.ptr, &s, C.size_t(unsafe.Sizeof(s))))
	}); err != nil {
		return Stats{}, err
	}
	return Stats{
		EventsRead:      uint64(s.events_read),
		EventsLost:      uint64(s.events_lost),
		SpansExported:   uint64(s.spans_exported),
		BatchesDropped:  uint64(s.batches_dropped),
		ParseErrors:     uint64(s.parse_errors),
		Connections:     uint64(s.connections),
		DecodeErrors:    uint64(s.decode_errors),
		SpansDropped:    uint64(s.spans_dropped),
		StreamGaps:      uint64(s.stream_gaps),
		RequestsLost:    uint64(s.requests_lost),
		Processes:       uint64(s.processes),
		TLSLibraries:    uint64(s.tls_libraries),
		TLSAttachErrors: uint64(s.tls_attach_errors),
		TLSNoSocket:     uint64(s.tls_no_socket),
		GenAICalls:      uint64(s.genai_calls),
		GenAIIncomplete: uint64(s.genai_incomplete),
	}, nil
}
