package link

import (
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

// linkIndexes dumps the namespace's links and returns the index of each one
// named in want. It is a dump because a new link's index is not in its ack
// (before Linux 6.3, which honours NLM_F_ECHO); one dump is cheaper than a
// lookup per link.
func (c *rtConn) linkIndexes(want map[string]bool) (map[string]linkInfo, error) {
	var (
		out map[string]linkInfo
		err error
	)
	for range dumpAttempts {
		out, err = c.dumpLinks(want)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

// linkInfo is what CreateBridges needs to know of a link it created.
type linkInfo struct {
	index int32
	mtu   uint32
}

func (c *rtConn) dumpLinks(want map[string]bool) (map[string]linkInfo, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	if err := c.sock.Send(req); err != nil {
		return nil, fmt.Errorf("dump links: %w", err)
	}
	out := make(map[string]linkInfo, len(want))
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
				if name, info, ok := parseLink(msg.Data); ok && want[name] {
					out[name] = info
				}
			}
		}
	}
}

// parseLink reads the name, index and MTU of an RTM_NEWLINK message body
// without decoding the rest of it.
func parseLink(data []byte) (string, linkInfo, bool) {
	if len(data) < unix.SizeofIfInfomsg {
		return "", linkInfo{}, false
	}
	info := linkInfo{index: int32(binary.NativeEndian.Uint32(data[4:8]))}
	var name string
	for attrs := data[unix.SizeofIfInfomsg:]; len(attrs) >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(attrs[0:2]))
		if l < unix.SizeofRtAttr || l > len(attrs) {
			break
		}
		value := attrs[unix.SizeofRtAttr:l]
		switch binary.NativeEndian.Uint16(attrs[2:4]) {
		case unix.IFLA_IFNAME:
			if n := len(value); n > 0 && value[n-1] == 0 {
				value = value[:n-1]
			}
			name = string(value)
		case unix.IFLA_MTU:
			if len(value) >= 4 {
				info.mtu = binary.NativeEndian.Uint32(value)
			}
		}
		attrs = attrs[min(rtaAlign(l), len(attrs)):]
	}
	return name, info, name != ""
}

func rtaAlign(l int) int { return (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }
