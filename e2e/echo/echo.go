// Package echo is the end-to-end suite's TCP and UDP echo server and probe.
// The server answers every connection and every datagram with the address it
// saw the peer at ("peer=IP:PORT"), so a test can tell DNAT from masquerade:
// a published port must show the real client, an outbound flow through a
// masquerading network must show the host's address.
//
// Nothing here knows about namespaces: the suite creates the sockets from a
// thread that has entered the namespace, and a socket stays in the namespace
// it was created in.
package echo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a set of TCP and UDP listeners on every IPv4 address.
type Server struct {
	listeners []net.Listener
	packets   []net.PacketConn
	wg        sync.WaitGroup
}

// Listen starts echo listeners on 0.0.0.0 for the given TCP and UDP ports.
func Listen(tcpPorts, udpPorts []uint16) (*Server, error) {
	s := &Server{}
	for _, port := range tcpPorts {
		l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("echo: listen tcp %d: %w", port, err)
		}
		s.listeners = append(s.listeners, l)
		s.wg.Go(func() { acceptLoop(l) })
	}
	for _, port := range udpPorts {
		c, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("echo: listen udp %d: %w", port, err)
		}
		s.packets = append(s.packets, c)
		s.wg.Go(func() { packetLoop(c) })
	}
	return s, nil
}

// Close stops every listener and waits for the loops to end. Connections
// being served end on their own (their peers close them, or a deadline).
func (s *Server) Close() {
	for _, l := range s.listeners {
		l.Close()
	}
	for _, c := range s.packets {
		c.Close()
	}
	s.wg.Wait()
}

// serveTimeout bounds one TCP connection, so a stuck client cannot keep a
// goroutine (and with it the namespace) alive after the test.
const serveTimeout = 10 * time.Second

func acceptLoop(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(serveTimeout))
			if _, err := fmt.Fprintf(conn, "peer=%s\n", conn.RemoteAddr()); err != nil {
				return
			}
			_, _ = io.Copy(conn, conn)
		}()
	}
}

func packetLoop(c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED left over from an earlier reply
		}
		reply := fmt.Appendf(nil, "peer=%s\n%s", from, buf[:n])
		_, _ = c.WriteTo(reply, from)
	}
}

// Outcome classifies a probe.
type Outcome string

// What a probe can end in. A drop shows up as Timeout; a closed port (RST or
// ICMP port unreachable) as Refused; an ICMP host/net unreachable or a
// missing route as Unreachable.
const (
	Connected   Outcome = "connected"
	Refused     Outcome = "refused"
	Timeout     Outcome = "timeout"
	Unreachable Outcome = "unreachable"
	Failed      Outcome = "failed"
)

// Result is what one probe saw.
type Result struct {
	Outcome Outcome
	// Peer is the client address as the server saw it (Connected only).
	Peer netip.AddrPort
	// Local is the client's own address for the flow.
	Local netip.AddrPort
	Err   error
}

func (r Result) String() string {
	if r.Outcome == Connected {
		return fmt.Sprintf("connected from %s, server saw %s", r.Local, r.Peer)
	}
	return fmt.Sprintf("%s (%v)", r.Outcome, r.Err)
}

// Probe connects to addr ("IP:PORT") over proto ("tcp" or "udp"), sends a
// payload and checks it comes back after the server's peer line. timeout
// bounds the whole exchange.
func Probe(proto, addr string, timeout time.Duration) Result {
	switch proto {
	case "tcp":
		return probeTCP(addr, timeout)
	case "udp":
		return probeUDP(addr, timeout)
	}
	return Result{Outcome: Failed, Err: fmt.Errorf("echo: unknown protocol %q", proto)}
}

const payload = "nftbridge-e2e"

func probeTCP(addr string, timeout time.Duration) Result {
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp4", addr, timeout)
	if err != nil {
		return failure(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	local := addrPort(conn.LocalAddr())
	r := bufio.NewReader(conn)
	peer, err := readPeer(r)
	if err != nil {
		return failure(err)
	}
	if _, err := io.WriteString(conn, payload+"\n"); err != nil {
		return failure(err)
	}
	echoed, err := r.ReadString('\n')
	if err != nil {
		return failure(err)
	}
	if strings.TrimSuffix(echoed, "\n") != payload {
		return Result{Outcome: Failed, Err: fmt.Errorf("echo: got %q back, want %q", echoed, payload)}
	}
	return Result{Outcome: Connected, Peer: peer, Local: local}
}

func probeUDP(addr string, timeout time.Duration) Result {
	flow, err := DialUDP(addr)
	if err != nil {
		return failure(err)
	}
	defer flow.Close()
	return flow.Exchange(timeout)
}

// UDPFlow is one UDP socket for several exchanges: they share a source port,
// so the kernel keeps them in one conntrack entry, like a long-lived UDP
// client (DNS, QUIC, games) would.
type UDPFlow struct {
	conn net.Conn
}

// DialUDP opens a UDP flow to addr ("IP:PORT").
func DialUDP(addr string) (*UDPFlow, error) {
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		return nil, err
	}
	return &UDPFlow{conn: conn}, nil
}

// Close closes the flow's socket.
func (f *UDPFlow) Close() error { return f.conn.Close() }

// Exchange sends one datagram and waits up to timeout for the echo.
func (f *UDPFlow) Exchange(timeout time.Duration) Result {
	_ = f.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(f.conn, payload); err != nil {
		return failure(err)
	}
	buf := make([]byte, 2048)
	n, err := f.conn.Read(buf)
	if err != nil {
		return failure(err)
	}
	r := bufio.NewReader(strings.NewReader(string(buf[:n])))
	peer, err := readPeer(r)
	if err != nil {
		return failure(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != payload {
		return Result{Outcome: Failed, Err: fmt.Errorf("echo: got %q back, want %q", rest, payload)}
	}
	return Result{Outcome: Connected, Peer: peer, Local: addrPort(f.conn.LocalAddr())}
}

func readPeer(r *bufio.Reader) (netip.AddrPort, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return netip.AddrPort{}, err
	}
	text, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "peer=")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("echo: server said %q, want peer=IP:PORT", line)
	}
	peer, err := netip.ParseAddrPort(text)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("echo: server said %q: %w", line, err)
	}
	return peer, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func failure(err error) Result {
	return Result{Outcome: Classify(err), Err: err}
}

// Classify maps a dial or read error to an Outcome.
func Classify(err error) Outcome {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return Refused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Unreachable
	case errors.Is(err, io.EOF):
		// The connection closed before the server spoke: no echo server
		// behind it, treated like a refusal.
		return Refused
	case errors.As(err, &netErr) && netErr.Timeout():
		return Timeout
	}
	return Failed
}
