package e2e

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// udpSink counts the datagrams that reach a port in ns and never answers,
// so the flows to it stay unreplied in conntrack.
type udpSink struct {
	conn net.PacketConn
	n    atomic.Int64
}

func (w *world) udpSink(ns string, port int) *udpSink {
	w.t.Helper()
	s := &udpSink{}
	err := inNS(ns, func() (err error) {
		s.conn, err = net.ListenPacket("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)).String())
		return err
	})
	if err != nil {
		w.t.Fatalf("UDP sink in %s: %v", ns, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.conn.ReadFrom(buf); err != nil {
				return
			}
			s.n.Add(1)
		}
	}()
	w.t.Cleanup(func() { s.conn.Close() })
	return s
}

// received is how many datagrams arrive during d.
func (s *udpSink) received(d time.Duration) int64 {
	before := s.n.Load()
	time.Sleep(d)
	return s.n.Load() - before
}

// sendForever sends a datagram to addr every 10 ms from one socket in ns
// (one conntrack entry, never answered) until the test ends.
func (w *world) sendForever(ns, addr string) {
	w.t.Helper()
	var conn net.Conn
	err := inNS(ns, func() (err error) {
		conn, err = net.Dial("udp4", addr)
		return err
	})
	if err != nil {
		w.t.Fatalf("UDP sender in %s to %s: %v", ns, addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(func() { cancel(); conn.Close() })
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = conn.Write([]byte("x")) // errors (no route once a veth is gone) are expected
			}
		}
	}()
}

// conntrackOf lists the host namespace's conntrack entries from or to addr
// (original source or reply source).
func (w *world) conntrackOf(addr string) []string {
	w.t.Helper()
	ip := net.ParseIP(addr)
	var out []string
	err := inNS(w.host, func() error {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
		for _, f := range flows {
			if f.Forward.SrcIP.Equal(ip) || f.Reverse.SrcIP.Equal(ip) {
				out = append(out, f.String())
			}
		}
		return nil
	})
	if err != nil {
		w.t.Fatalf("conntrack list in %s: %v", w.host, err)
	}
	return out
}

// TestOneWayFlows: a UDP flow that never gets a reply stays "new" in
// conntrack on every packet, and the forward chain accepts its later packets
// at CONFIRMED without deciding again, as it does established ones. That is
// safe only because nftbridge deletes the conntrack entries behind whatever
// it takes away: unpublishing the port cuts such a flow at once, and
// removing an endpoint leaves no connection from or to its address, in
// either direction.
func TestOneWayFlows(t *testing.T) {
	t.Parallel()
	w := newPairWorld(t)
	const port = 5400
	w.mustNB("port", "publish", "a", "-p", "5400:5400/udp")
	inbound := w.udpSink(w.a, port)
	outbound := w.udpSink(w.outside, port)
	w.sendForever(w.outside, hostPort(hostAddr, port))
	w.sendForever(w.a, hostPort(outsideAddr, port))
	if n := inbound.received(time.Second); n < 10 {
		t.Fatalf("one-way flow outside → host:%d → a: %d datagrams in 1s, want a steady stream", port, n)
	}
	if n := outbound.received(time.Second); n < 10 {
		t.Fatalf("one-way flow a → outside:%d: %d datagrams in 1s, want a steady stream", port, n)
	}
	if flows := w.conntrackOf(w.aAddr); len(flows) < 2 {
		t.Fatalf("conntrack entries of a (%s): %q; want the inbound and the outbound flow", w.aAddr, flows)
	}

	w.mustNB("port", "unpublish", "a", "-p", "5400:5400/udp")
	time.Sleep(100 * time.Millisecond) // datagrams already queued
	if n := inbound.received(time.Second); n != 0 {
		t.Errorf("the same one-way flow after unpublish: %d datagrams reached a in 1s, want none", n)
	}
	if n := outbound.received(time.Second); n < 10 {
		t.Errorf("a's own outbound flow after unpublishing its port: %d datagrams in 1s, want it untouched", n)
	}

	w.mustNB("endpoint", "rm", "a")
	if flows := w.conntrackOf(w.aAddr); len(flows) != 0 {
		t.Errorf("conntrack entries from or to a (%s) after endpoint rm: %q; want none", w.aAddr, flows)
	}
}
