package server

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"cliq/events"
)

// wsConn is a test client of the event stream.
type wsConn struct {
	ws *websocket.Conn
}

// dialWS opens a WebSocket connection to the server at baseURL with token
// in the Authorization header. It is closed when the test ends.
func dialWS(tb testing.TB, baseURL, token string) *wsConn {
	tb.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(baseURL, "http")+"/ws", baseURL)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Header = http.Header{"Authorization": {"Bearer " + token}}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		tb.Fatalf("dial the event stream of %s: %v", baseURL, err)
	}
	tb.Cleanup(func() { ws.Close() })
	return &wsConn{ws: ws}
}

// subscribe subscribes to channel and waits for the acknowledgement, which
// shows that the connection is open and served.
func (c *wsConn) subscribe(tb testing.TB, channel string) {
	tb.Helper()
	if err := websocket.JSON.Send(c.ws, map[string]string{"action": "subscribe", "channel": channel}); err != nil {
		tb.Fatalf("send subscribe: %v", err)
	}
	c.ws.SetReadDeadline(time.Now().Add(e2eTimeout))
	var ack events.Event
	if err := websocket.JSON.Receive(c.ws, &ack); err != nil {
		tb.Fatalf("read the subscribe acknowledgement: %v", err)
	}
	if ack.Type != events.TypeSubscribed || ack.Channel != channel {
		tb.Fatalf("got %+v, want a subscribed acknowledgement for %s", ack, channel)
	}
}

// waitClose reads frames until the server's close frame and returns its
// code. It fails the test when none arrives within timeout.
func (c *wsConn) waitClose(tb testing.TB, timeout time.Duration) int {
	tb.Helper()
	c.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		fr, err := c.ws.NewFrameReader()
		if err != nil {
			tb.Fatalf("no close frame within %s: %v", timeout, err)
		}
		data, err := io.ReadAll(fr)
		if err != nil {
			tb.Fatalf("read frame payload: %v", err)
		}
		if fr.PayloadType() != websocket.CloseFrame {
			continue
		}
		if len(data) < 2 {
			return 1005
		}
		return int(binary.BigEndian.Uint16(data))
	}
}

// tcpProxy forwards connections from a 127.0.0.1 port to a target address.
// Stop closes the listener and cuts every open connection, which looks to
// the client like the target going down; Start listens on the same port
// again.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startProxy starts a proxy to target on a free port. It is stopped when
// the test ends.
func startProxy(tb testing.TB, target string) *tcpProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &tcpProxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	tb.Cleanup(p.Stop)
	return p
}

// Start listens again on the proxy's port.
func (p *tcpProxy) Start(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		tb.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// Stop closes the listener and every forwarded connection, and waits for
// the forwarding goroutines.
func (p *tcpProxy) Stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			p.forward(client)
		}
	}()
}

// forward connects client to the target and copies both ways until either
// side closes.
func (p *tcpProxy) forward(client net.Conn) {
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		client.Close()
		upstream.Close()
		return
	}
	p.conns[client], p.conns[upstream] = struct{}{}, struct{}{}
	p.mu.Unlock()

	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}
	p.wg.Add(2)
	go pipe(upstream, client)
	go pipe(client, upstream)
}
