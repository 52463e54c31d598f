package echo

import (
	"net"
	"testing"
	"time"
)

func TestProbeLoopback(t *testing.T) {
	srv, err := Listen([]uint16{0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.listeners[0].Addr().(*net.TCPAddr)
	r := Probe("tcp", addr.String(), 2*time.Second)
	if r.Outcome != Connected || r.Peer != r.Local {
		t.Fatalf("tcp probe: %v; want connected with the server seeing the client's own address", r)
	}
}

func TestProbeUDPLoopback(t *testing.T) {
	srv, err := Listen(nil, []uint16{0})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.packets[0].LocalAddr().String()
	r := Probe("udp", "127.0.0.1"+addr[len("0.0.0.0"):], 2*time.Second)
	if r.Outcome != Connected || r.Peer != r.Local {
		t.Fatalf("udp probe: %v; want connected with the server seeing the client's own address", r)
	}
}

func TestProbeClosedPorts(t *testing.T) {
	// Find a free port by listening and closing: nothing listens there now.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if r := Probe("tcp", addr, time.Second); r.Outcome != Refused {
		t.Errorf("tcp to a closed port: %v, want refused", r)
	}
	if r := Probe("udp", addr, time.Second); r.Outcome != Refused {
		t.Errorf("udp to a closed port: %v, want refused (ICMP port unreachable)", r)
	}
}
