package mqtt

import (
	"bytes"
	"slices"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is paho's store of unacknowledged packets, kept as their
// encoded bytes: Get returns a packet of its own, never the one paho is
// writing. paho's memory store hands the stored packet itself back, and
// after a reconnect its resume sets Dup on that packet while the writer
// of the dropped connection may still be encoding it (a data race inside
// paho that the race detector reported in the broker-restart tests).
// Keys come back in the order they were first put.
type copyStore struct {
	mu    sync.Mutex
	open  bool
	order []string
	m     map[string][]byte
}

var _ paho.Store = (*copyStore)(nil)

func newCopyStore() *copyStore { return &copyStore{m: map[string][]byte{}} }

func (s *copyStore) Open() {
	s.mu.Lock()
	s.open = true
	s.mu.Unlock()
}

// Put keeps message's encoding. paho calls it from the goroutine that
// owns the packet, before writing it.
func (s *copyStore) Put(key string, message packets.ControlPacket) {
	var b bytes.Buffer
	if err := message.Write(&b); err != nil {
		return // not encodable: it could not be sent again either
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		return
	}
	if _, ok := s.m[key]; !ok {
		s.order = append(s.order, key)
	}
	s.m[key] = b.Bytes()
}

// Get decodes a fresh packet (nil if there is none).
func (s *copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	b, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p, err := packets.ReadPacket(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	return p
}

func (s *copyStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

func (s *copyStore) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok {
		return
	}
	delete(s.m, key)
	s.order = slices.DeleteFunc(s.order, func(k string) bool { return k == key })
}

func (s *copyStore) Close() {
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
}

func (s *copyStore) Reset() {
	s.mu.Lock()
	s.order, s.m = nil, map[string][]byte{}
	s.mu.Unlock()
}
