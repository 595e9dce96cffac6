package soak

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// proxy forwards TCP connections from a loopback port to target. Down
// makes the far side vanish (the listener closes and every connection is
// cut); Up listens on the same port again. It stands between the daemon
// and the Hesabe simulator, so the gateway can go away without losing
// the simulator's invoices.
type proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gateway proxy: %w", err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by down or close
			}
			p.forward(c)
		}
	}()
}

// track adds c to the connections Down cuts; false when the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *proxy) forward(in net.Conn) {
	if !p.track(in) {
		_ = in.Close()
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.untrack(in)
			return
		}
		if !p.track(out) {
			_ = out.Close()
			p.untrack(in)
			return
		}
		var copies sync.WaitGroup
		copies.Add(2)
		pipe := func(dst, src net.Conn) {
			defer copies.Done()
			// Plain reads and writes: TCP to TCP, io.Copy would splice
			// through pipes Go keeps in a pool, descriptors that would
			// blur the soak's count of the bridge's own.
			_, _ = io.Copy(struct{ io.Writer }{dst}, struct{ io.Reader }{src})
			// One direction ended: end both, as a gateway would.
			p.untrack(dst)
			p.untrack(src)
		}
		go pipe(out, in)
		go pipe(in, out)
		copies.Wait()
	}()
}

// down closes the listener and cuts every connection: new connections
// are refused until up.
func (p *proxy) down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// up listens on the proxy's port again.
func (p *proxy) up() error {
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("gateway proxy: listen again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// open is how many connections go through the proxy now.
func (p *proxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2 // each is the client's and ours to the target
}

// close stops the proxy and waits for its goroutines.
func (p *proxy) close() error {
	p.down()
	p.wg.Wait()
	return nil
}
