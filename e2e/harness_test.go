package e2e

import (
	"testing"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// TestHarness checks the suite's own plumbing without nftbridge: the uplink
// between the outside and host namespaces, echo servers and probes created
// inside namespaces, and the outcomes the other tests rely on.
func TestHarness(t *testing.T) {
	t.Parallel()
	w := newNetWorld(t, "")
	w.serve(w.host, []uint16{9000}, []uint16{9000})
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, 9000), outsideAddr)
	w.expectPeer(t, w.outside, "udp", hostPort(hostAddr, 9000), outsideAddr)
	w.expectPeer(t, w.host, "tcp", hostPort(outsideAddr, outsideTCP), hostAddr)
	w.expectPeer(t, w.host, "udp", hostPort(outsideAddr, outsideUDP), hostAddr)
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 9001), echo.Refused)
	w.expectBlocked(t, w.outside, "udp", hostPort(hostAddr, 9001), echo.Refused)
	// The echo server in the host namespace is not in the outside one.
	w.expectBlocked(t, w.outside, "tcp", hostPort("127.0.0.1", 9000), echo.Refused)
	// A drop is a timeout: the host's own firewall, not ours, for once.
	w.nft("add table ip e2eharness")
	w.nft("add chain ip e2eharness input { type filter hook input priority 0; }")
	w.nft("add rule ip e2eharness input tcp dport 9000 drop")
	w.expectBlocked(t, w.outside, "tcp", hostPort(hostAddr, 9000), echo.Timeout)
}
