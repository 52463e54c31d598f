// Command nbecho is the small TCP/UDP echo server and client the demo uses:
// the server answers every connection or datagram with the peer address it
// saw, so masquerading and DNAT are visible.
//
//	nbecho serve [-tcp PORT,...] [-udp PORT,...]
//	nbecho dial tcp|udp HOST:PORT [-timeout 2s]
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nbecho serve [-tcp PORTS] [-udp PORTS] | nbecho dial tcp|udp HOST:PORT [-timeout D]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "dial":
		err = dial(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want serve or dial", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nbecho:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	tcpPorts := fs.String("tcp", "", "comma-separated TCP ports")
	udpPorts := fs.String("udp", "", "comma-separated UDP ports")
	if err := fs.Parse(args); err != nil {
		return err
	}
	errs := make(chan error, 1)
	for _, p := range split(*tcpPorts) {
		l, err := net.Listen("tcp4", ":"+p)
		if err != nil {
			return err
		}
		go func() { errs <- acceptLoop(l) }()
	}
	for _, p := range split(*udpPorts) {
		c, err := net.ListenPacket("udp4", ":"+p)
		if err != nil {
			return err
		}
		go func() { errs <- udpLoop(c) }()
	}
	return <-errs
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func acceptLoop(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			fmt.Fprintf(c, "peer=%s port=%s got=%q\n", c.RemoteAddr(), portOf(c.LocalAddr()), buf[:n])
		}()
	}
}

func udpLoop(c net.PacketConn) error {
	buf := make([]byte, 512)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		reply := fmt.Sprintf("peer=%s port=%s got=%q\n", peer, portOf(c.LocalAddr()), buf[:n])
		_, _ = c.WriteTo([]byte(reply), peer)
	}
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

func dial(args []string) error {
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after")
	if len(args) < 2 {
		return errors.New("dial needs tcp|udp HOST:PORT")
	}
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	network := args[0] + "4"
	c, err := net.DialTimeout(network, args[1], *timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(*timeout))
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("%s %s: no answer: %w", args[0], args[1], err)
	}
	fmt.Print(string(buf[:n]))
	return nil
}
