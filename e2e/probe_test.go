package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// Timeouts. A flow that must work is retried until reachDeadline: right
// after a change the kernel may still be resolving neighbours (a recreated
// bridge has a new MAC address). A flow that must not work gets one attempt
// of blockedTimeout: a drop shows up as a timeout, so this is the price of
// every negative check. The VM runs under emulation and gets more time.
var (
	reachDeadline  = pick(10*time.Second, 30*time.Second)
	attemptTimeout = pick(2*time.Second, 5*time.Second)
	blockedTimeout = pick(1500*time.Millisecond, 3*time.Second)
)

func pick(normal, vm time.Duration) time.Duration {
	if os.Getenv("NFTBRIDGE_VM") != "" {
		return vm
	}
	return normal
}

// probe connects from namespace ns to addr once.
func probe(ns, proto, addr string, timeout time.Duration) echo.Result {
	var res echo.Result
	err := inNS(ns, func() error {
		res = echo.Probe(proto, addr, timeout)
		return nil
	})
	if err != nil {
		return echo.Result{Outcome: echo.Failed, Err: err}
	}
	return res
}

// hostPort joins an address and a port.
func hostPort(addr string, port int) string { return fmt.Sprintf("%s:%d", addr, port) }

// expectConnected checks that ns reaches addr over proto, retrying until
// reachDeadline, and returns what the server saw.
func (w *world) expectConnected(t testing.TB, ns, proto, addr string) echo.Result {
	t.Helper()
	start := time.Now()
	deadline := start.Add(reachDeadline)
	var failures []string
	for {
		res := probe(ns, proto, addr, attemptTimeout)
		if res.Outcome == echo.Connected {
			if len(failures) > 0 {
				t.Logf("%s → %s/%s connected after %v and %d failed attempts: %v",
					ns, addr, proto, time.Since(start).Round(time.Millisecond), len(failures), failures)
			}
			return res
		}
		failures = append(failures, res.String())
		if time.Now().After(deadline) {
			t.Errorf("%s → %s/%s: %v; want it to connect", ns, addr, proto, res)
			return res
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expectPeer checks that ns reaches addr and that the server saw the client
// at wantPeer (the masquerade or DNAT evidence).
func (w *world) expectPeer(t testing.TB, ns, proto, addr, wantPeer string) {
	t.Helper()
	res := w.expectConnected(t, ns, proto, addr)
	if res.Outcome != echo.Connected {
		return
	}
	if want := netip.MustParseAddr(wantPeer); res.Peer.Addr() != want {
		t.Errorf("%s → %s/%s: server saw %s, want %s (client's own address %s)",
			ns, addr, proto, res.Peer.Addr(), want, res.Local.Addr())
	}
}

// blockedFlow is a connection that must fail, ending in one of the outcomes
// in want: Timeout for a firewall drop, Refused where the host's own stack
// answers because nothing was translated.
type blockedFlow struct {
	from, proto, addr string
	want              []echo.Outcome
}

func blocked(from, proto, addr string, want ...echo.Outcome) blockedFlow {
	return blockedFlow{from: from, proto: proto, addr: addr, want: want}
}

// expectBlocked checks one flow that must fail.
func (w *world) expectBlocked(t testing.TB, ns, proto, addr string, want ...echo.Outcome) {
	t.Helper()
	w.expectAllBlocked(t, blocked(ns, proto, addr, want...))
}

// expectAllBlocked checks flows that must fail, all at once: a drop costs a
// whole timeout, and the suite has dozens of them.
func (w *world) expectAllBlocked(t testing.TB, flows ...blockedFlow) {
	t.Helper()
	results := make([]echo.Result, len(flows))
	var wg sync.WaitGroup
	for i, f := range flows {
		wg.Go(func() { results[i] = probe(f.from, f.proto, f.addr, blockedTimeout) })
	}
	wg.Wait()
	for i, f := range flows {
		if !slices.Contains(f.want, results[i].Outcome) {
			t.Errorf("%s → %s/%s: %v; want %v", f.from, f.addr, f.proto, results[i], f.want)
		}
	}
}
