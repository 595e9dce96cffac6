package mqtt

import (
	"io"
	"sync"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestCopyStoreHandsOutCopies: what paho does after a reconnect (resume:
// Get the stored publish, set Dup, send it) must not touch the packet the
// dropped connection's writer may still be encoding. Under -race, paho's
// memory store reports the race here; each Get of copyStore is a packet
// of its own.
func TestCopyStoreHandsOutCopies(t *testing.T) {
	s := newCopyStore()
	s.Open()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = "posbridge/T-1/in", 1, 7, []byte(`{"type":"invoice"}`)
	s.Put("o.7", pub)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the old connection's writer
		defer wg.Done()
		for range 200 {
			_ = pub.Write(io.Discard)
		}
	}()
	go func() { // resume
		defer wg.Done()
		for range 200 {
			p := s.Get("o.7").(*packets.PublishPacket)
			p.Dup = true
		}
	}()
	wg.Wait()
	if pub.Dup {
		t.Fatal("resume's Dup reached the packet being written")
	}
	got, ok := s.Get("o.7").(*packets.PublishPacket)
	if !ok || got == pub || got.MessageID != 7 || got.Qos != 1 || got.TopicName != pub.TopicName || string(got.Payload) != string(pub.Payload) {
		t.Fatalf("Get = %+v, want a copy of %+v", got, pub)
	}
	s.Put("o.9", pub)
	s.Put("o.8", pub)
	s.Del("o.7")
	if keys := s.All(); len(keys) != 2 || keys[0] != "o.9" || keys[1] != "o.8" {
		t.Fatalf("All = %v, want the order of Put", keys)
	}
	if s.Get("o.7") != nil {
		t.Fatal("a deleted key is still there")
	}
}
