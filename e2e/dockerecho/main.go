// Command dockerecho is the e2e suite's echo server and probe packed into a
// container image for the Docker driver test. It speaks the suite's echo
// protocol (package e2e/echo), so probes from test namespaces and from
// containers read the same "peer=IP:PORT" evidence.
//
//	dockerecho serve [-tcp PORT,...] [-udp PORT,...]
//	dockerecho probe tcp|udp IP:PORT [-timeout 2s]
//
// probe prints the result as one JSON object ({"Outcome", "Peer", "Err"})
// and exits 0 whatever the outcome; 2 means it was called wrongly.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "probe":
		err = probe(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerecho:", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dockerecho serve [-tcp PORTS] [-udp PORTS] | dockerecho probe tcp|udp IP:PORT [-timeout D]")
	os.Exit(2)
}

// serve runs until SIGTERM or SIGINT: as a container's PID 1 it has no
// default signal handling, so it must exit on its own for `docker stop`.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	tcpPorts := fs.String("tcp", "", "comma-separated TCP ports")
	udpPorts := fs.String("udp", "", "comma-separated UDP ports")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tcp, err := portList(*tcpPorts)
	if err != nil {
		return err
	}
	udp, err := portList(*udpPorts)
	if err != nil {
		return err
	}
	srv, err := echo.Listen(tcp, udp)
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Close()
	return nil
}

func portList(s string) ([]uint16, error) {
	var out []uint16
	for _, field := range strings.Split(s, ",") {
		if field == "" {
			continue
		}
		port, err := strconv.ParseUint(field, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("invalid port %q", field)
		}
		out = append(out, uint16(port))
	}
	return out, nil
}

// probeResult is what probe prints.
type probeResult struct {
	Outcome echo.Outcome
	Peer    string `json:",omitempty"`
	Err     string `json:",omitempty"`
}

func probe(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("probe needs tcp|udp IP:PORT")
	}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	res := echo.Probe(args[0], args[1], *timeout)
	out := probeResult{Outcome: res.Outcome}
	if res.Outcome == echo.Connected {
		out.Peer = res.Peer.String()
	}
	if res.Err != nil {
		out.Err = res.Err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
