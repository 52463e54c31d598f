package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// pipelineDepth is how many requests rtConn.exchange has in flight: their
// acks must fit the socket's receive buffer, or the kernel drops the rest
// (ENOBUFS). An ack costs well under 1 KiB of buffer; 64 of them fit the
// default 208 KiB with room to spare for error acks, which echo the request.
const pipelineDepth = 64

// rtConn is one rtnetlink socket on which requests are pipelined: a round
// of them goes down in one sendmsg and the acks are read back by sequence
// number. vishvananda/netlink sends one request and waits for its ack, and
// opens a socket per handle; creating 1,000 bridges that way costs a
// round trip per step, which the kernel's own work does not need.
type rtConn struct {
	sock *nl.NetlinkSocket
}

func (m *Manager) rtConn() (*rtConn, error) {
	sock, err := nl.GetNetlinkSocketAt(m.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return &rtConn{sock: sock}, nil
}

func (c *rtConn) Close() { c.sock.Close() }

// exchange sends every request (each must ask for an ack) and returns the
// kernel's answer to each: nil, or its errno. The error is for the socket.
func (c *rtConn) exchange(reqs []*nl.NetlinkRequest) ([]error, error) {
	answers := make([]error, len(reqs))
	for start := 0; start < len(reqs); start += pipelineDepth {
		round := reqs[start:min(start+pipelineDepth, len(reqs))]
		if err := c.round(round, answers[start:]); err != nil {
			return nil, err
		}
	}
	return answers, nil
}

// round sends reqs in one sendmsg and collects their acks into answers.
func (c *rtConn) round(reqs []*nl.NetlinkRequest, answers []error) error {
	var buf []byte
	pending := make(map[uint32]int, len(reqs))
	for i, req := range reqs {
		pending[req.Seq] = i
		buf = append(buf, req.Serialize()...)
	}
	if err := unix.Sendto(c.sock.GetFd(), buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send netlink requests: %w", err)
	}
	for len(pending) > 0 {
		msgs, _, err := c.sock.Receive()
		if err != nil {
			return fmt.Errorf("read netlink acks: %w", err)
		}
		for _, msg := range msgs {
			i, ok := pending[msg.Header.Seq]
			if !ok || msg.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			delete(pending, msg.Header.Seq)
			if len(msg.Data) < 4 {
				return errors.New("read netlink acks: short ack")
			}
			if errno := -int32(binary.NativeEndian.Uint32(msg.Data[:4])); errno != 0 {
				answers[i] = unix.Errno(errno)
			}
		}
	}
	return nil
}

// linkRecord is what nftbridge reads of a link from a dump.
type linkRecord struct {
	name          string
	kind          string // IFLA_INFO_KIND: "bridge", "veth"…; "" for none
	index, master int32
	flags, mtu    uint32
	// routeLocalnet is net.ipv4.conf.<name>.route_localnet; -1 when the
	// dump did not say (no IPv4 on the link).
	routeLocalnet int
}

// dumpLinks dumps every link of the namespace, retrying a dump the kernel
// says was interrupted. It decodes only the attributes of linkRecord:
// netlink.LinkList decodes everything and was most of a restore's
// inventory.
func (c *rtConn) dumpLinks() ([]linkRecord, error) {
	var (
		out []linkRecord
		err error
	)
	for range dumpAttempts {
		out, err = c.dumpLinksOnce()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

func (c *rtConn) dumpLinksOnce() ([]linkRecord, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	if err := c.sock.Send(req); err != nil {
		return nil, fmt.Errorf("dump links: %w", err)
	}
	var out []linkRecord
	interrupted := false
	for {
		msgs, _, err := c.sock.Receive()
		if err != nil {
			return nil, fmt.Errorf("dump links: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Seq != req.Seq {
				continue
			}
			interrupted = interrupted || msg.Header.Flags&unix.NLM_F_DUMP_INTR != 0
			switch msg.Header.Type {
			case unix.NLMSG_DONE:
				if interrupted {
					return nil, netlink.ErrDumpInterrupted
				}
				return out, nil
			case unix.NLMSG_ERROR:
				if len(msg.Data) >= 4 {
					return nil, fmt.Errorf("dump links: %w", unix.Errno(-int32(binary.NativeEndian.Uint32(msg.Data[:4]))))
				}
				return nil, errors.New("dump links: short error")
			case unix.RTM_NEWLINK:
				if l, ok := parseLink(msg.Data); ok {
					out = append(out, l)
				}
			}
		}
	}
}

// parseLink decodes an RTM_NEWLINK message body into a linkRecord.
func parseLink(data []byte) (linkRecord, bool) {
	if len(data) < unix.SizeofIfInfomsg {
		return linkRecord{}, false
	}
	l := linkRecord{index: int32(binary.NativeEndian.Uint32(data[4:8])),
		flags: binary.NativeEndian.Uint32(data[8:12]), routeLocalnet: -1}
	forEachAttr(data[unix.SizeofIfInfomsg:], func(typ uint16, value []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			l.name = string(bytes.TrimRight(value, "\x00"))
		case unix.IFLA_MTU:
			l.mtu = nativeUint32(value)
		case unix.IFLA_MASTER:
			l.master = int32(nativeUint32(value))
		case unix.IFLA_LINKINFO:
			forEachAttr(value, func(typ uint16, value []byte) {
				if typ == nl.IFLA_INFO_KIND {
					l.kind = string(bytes.TrimRight(value, "\x00"))
				}
			})
		case unix.IFLA_AF_SPEC:
			l.routeLocalnet = routeLocalnet(value)
		}
	})
	return l, l.name != ""
}

// routeLocalnet reads route_localnet from IFLA_AF_SPEC: the kernel dumps
// an interface's IPv4 settings as IFLA_INET_CONF, an array of u32 indexed
// by IPV4_DEVCONF_* minus one.
func routeLocalnet(afSpec []byte) int {
	value := -1
	forEachAttr(afSpec, func(family uint16, attrs []byte) {
		if family != unix.AF_INET {
			return
		}
		forEachAttr(attrs, func(typ uint16, conf []byte) {
			if at := (ipv4DevconfRouteLocalnet - 1) * 4; typ == unix.IFLA_INET_CONF && len(conf) >= at+4 {
				value = int(binary.NativeEndian.Uint32(conf[at:]))
			}
		})
	})
	return value
}

// forEachAttr calls fn with the type (without the nested and byte-order
// flags) and value of each netlink attribute in b.
func forEachAttr(b []byte, fn func(typ uint16, value []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < unix.SizeofRtAttr || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[unix.SizeofRtAttr:l])
		b = b[min(rtaAlign(l), len(b)):]
	}
}

func nativeUint32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

func rtaAlign(l int) int { return (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }
