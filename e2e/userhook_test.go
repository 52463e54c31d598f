package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// pairWorld is two default networks with one container each: a's container
// publishes 8080:80. The user-hook and restore tests start from it.
type pairWorld struct {
	*world
	bridgeA, bridgeB string
	a, aAddr         string
	b, bAddr         string
}

func newPairWorld(t *testing.T) *pairWorld {
	t.Helper()
	w := &pairWorld{world: newWorld(t)}
	w.bridgeA = w.network("na", "172.31.0.0/24")
	w.bridgeB = w.network("nb", "172.30.0.0/24")
	w.a, w.aAddr = w.endpoint("na", "a")
	w.b, w.bAddr = w.endpoint("nb", "b")
	w.mustNB("port", "publish", "a", "-p", "8080:80", "-p", "5353:53/udp")
	w.serve(w.a, []uint16{80}, []uint16{53})
	w.serve(w.b, []uint16{80}, nil)
	return w
}

// userChain lists the admin's chain.
func (w *world) userChain() string {
	w.t.Helper()
	return w.nft("list", "chain", "ip", "nftbridge", "user")
}

// TestUserHook: rules an admin adds to `ip nftbridge user` run before ours
// and survive `nftbridge restore`, like Docker's DOCKER-USER.
func TestUserHook(t *testing.T) {
	t.Parallel()
	w := newPairWorld(t)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	w.expectBlocked(t, w.a, "tcp", hostPort(w.bAddr, 80), echo.Timeout)

	// A drop in the user chain closes a published port. It sees the packet
	// after DNAT, so it names the container's address and port.
	w.nft("add", "rule", "ip", "nftbridge", "user", "ip", "daddr", w.aAddr, "tcp", "dport", "80", "drop")
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 8080), echo.Timeout)
	w.expectPeer(t, w.outside, "udp", hostPort(hostAddr, 5353), outsideAddr)
	w.nft("flush", "chain", "ip", "nftbridge", "user")
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)

	// An accept opens one direction between two networks; the replies come
	// back through ESTABLISHED, the other direction stays closed.
	accept := fmt.Sprintf(`iifname "%s" oifname "%s" accept`, w.bridgeA, w.bridgeB)
	w.nft("add rule ip nftbridge user " + accept)
	w.expectPeer(t, w.a, "tcp", hostPort(w.bAddr, 80), w.aAddr)
	w.expectBlocked(t, w.b, "tcp", hostPort(w.aAddr, 80), echo.Timeout)

	// Element updates leave the user chain alone...
	w.mustNB("port", "publish", "b", "-p", "8081:80")
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8081), outsideAddr)
	// ...and so does a restore, which rebuilds every other chain.
	before := w.nft("list", "table", "ip", "nftbridge")
	if !strings.Contains(before, accept) {
		t.Fatalf("user chain lost the admin's rule %q after publishing:\n%s", accept, before)
	}
	w.mustNB("restore")
	if after := w.nft("list", "table", "ip", "nftbridge"); after != before {
		t.Errorf("restore changed the table:\n%s", lineDiff(before, after))
	}
	if chain := w.userChain(); !strings.Contains(chain, accept) {
		t.Errorf("user chain after restore lacks %q:\n%s", accept, chain)
	}
	w.expectPeer(t, w.a, "tcp", hostPort(w.bAddr, 80), w.aAddr)
	w.expectBlocked(t, w.b, "tcp", hostPort(w.aAddr, 80), echo.Timeout)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 8081), outsideAddr)
}

// lineDiff shows the lines only in want (-) and only in got (+), in order.
func lineDiff(want, got string) string {
	wantLines, gotLines := strings.Split(want, "\n"), strings.Split(got, "\n")
	inGot, inWant := map[string]int{}, map[string]int{}
	for _, l := range gotLines {
		inGot[l]++
	}
	for _, l := range wantLines {
		inWant[l]++
	}
	var b strings.Builder
	for _, l := range wantLines {
		if inGot[l] == 0 {
			fmt.Fprintf(&b, "-%s\n", l)
		}
	}
	for _, l := range gotLines {
		if inWant[l] == 0 {
			fmt.Fprintf(&b, "+%s\n", l)
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order or count)\n--- want\n" + want + "\n--- got\n" + got
	}
	return b.String()
}
