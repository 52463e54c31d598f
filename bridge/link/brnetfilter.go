package link

import (
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// EnableBridgeNetfilter makes IPv4 traffic between the ports of one bridge
// pass nftables' inet hooks (the forward chain), which is what enforces
// ICC off. It sets the bridge's own nf_call_iptables switch (`ip link set
// BR type bridge nf_call_iptables 1`), loading br_netfilter first if it is
// not there, and leaves net.bridge.bridge-nf-call-iptables alone: turned on
// for the whole namespace it would send every bridge's traffic (to and
// from the outside too) through a second pass of the hooks, a cost that
// bridges with ICC on do not need.
func (m *Manager) EnableBridgeNetfilter(bridge string) error {
	if err := checkIfName("bridge", bridge); err != nil {
		return err
	}
	if err := m.ensureBrNetfilterLoaded(); err != nil {
		return fmt.Errorf("bridge %q: %w", bridge, err)
	}
	h, err := m.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := lookupBridge(h, bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("bridge %q does not exist", bridge)
	}
	c, err := m.rtConn()
	if err != nil {
		return err
	}
	defer c.Close()
	answers, err := c.exchange([]*nl.NetlinkRequest{bridgeNetfilterRequest(int32(br.Attrs().Index))})
	if err == nil {
		err = answers[0]
	}
	if err != nil {
		return fmt.Errorf("bridge %q: turn on nf_call_iptables: %w", bridge, err)
	}
	return nil
}

// bridgeNetfilterRequest turns IFLA_BR_NF_CALL_IPTABLES on for bridge index.
func bridgeNetfilterRequest(index int32) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = index
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_NF_CALL_IPTABLES, []byte{1})
	req.AddData(info)
	return req
}
