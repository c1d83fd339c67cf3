package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"
)

// sharedReceivers maps a receiver ID to the one receiver that serves every
// pipeline naming it, from its creation until its Shutdown (after which a
// reloaded configuration gets a fresh one). It is what contrib's
// internal/sharedcomponent does, which cannot be imported from outside
// contrib (an `internal` package; the core's copy is internal too).
type sharedReceivers struct {
	mu sync.Mutex
	m  map[component.ID]*ebpfReceiver
}

var receivers = &sharedReceivers{m: map[component.ID]*ebpfReceiver{}}

func (s *sharedReceivers) getOrCreate(set receiver.Settings, cfg *Config) (*ebpfReceiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[set.ID]; ok {
		return r, nil
	}
	r, err := newReceiver(set, cfg)
	if err != nil {
		return nil, err
	}
	r.onShutdown = func() { s.remove(set.ID, r) }
	s.m[set.ID] = r
	return r, nil
}

func (s *sharedReceivers) remove(id component.ID, r *ebpfReceiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[id] == r {
		delete(s.m, id)
	}
}
