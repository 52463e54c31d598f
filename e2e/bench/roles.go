package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// roleEnv names the role a re-executed benchmark process plays (server,
// client, timer…) inside a namespace: `ip netns exec NS <self> ARGS` with
// NBBENCH_ROLE=role. Both nbbench and the smoke test's binary honour it.
const roleEnv = "NBBENCH_ROLE"

// roles maps a role name to its implementation; each parses its own flags
// and prints its result (JSON) on stdout.
func roles() map[string]func(args []string) error {
	return map[string]func(args []string) error{
		"server": roleServer, "udpsink": roleUDPSink, "probe": roleProbe, "ctflush": roleCTFlush,
		"crr": roleCRR, "rr": roleRR, "udp": roleUDPSend,
		"steps": roleSteps, "stepserve": roleStepServe, "libpub": roleLibPublishServe, "libnet": roleLibNetwork, "hold": roleHold,
	}
}

// MaybeRunRole runs the role named by $NBBENCH_ROLE, if any, and exits; it
// returns at once otherwise. Call it first thing in main (and TestMain).
func MaybeRunRole() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	fn, ok := roles()[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "nbbench: unknown role %q\n", role)
		os.Exit(2)
	}
	if err := fn(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "nbbench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func printJSON(v any) error { return json.NewEncoder(os.Stdout).Encode(v) }

// waitStdinEOF blocks until the orchestrator closes our stdin.
func waitStdinEOF() { _, _ = io.Copy(io.Discard, os.Stdin) }

// roleServer is the container's TCP server: each connection answers every
// byte with one byte until the peer closes. Blocking system calls on
// locked threads (GOMAXPROCS above the thread count) keep Go's scheduler
// and netpoller out of the path: the work is the kernel's.
func roleServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	port := fs.Int("port", ServerTCPPort, "TCP port")
	threads := fs.Int("threads", 64, "accepting threads (≥ concurrent connections)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	runtime.GOMAXPROCS(*threads + 4)
	lfd, err := listenTCP(*port)
	if err != nil {
		return err
	}
	for i := 0; i < *threads; i++ {
		go acceptLoop(lfd)
	}
	fmt.Println("ready")
	waitStdinEOF()
	return nil
}

func listenTCP(port int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port}); err != nil {
		return -1, fmt.Errorf("bind :%d: %w", port, err)
	}
	if err := syscall.Listen(fd, 4096); err != nil {
		return -1, err
	}
	return fd, nil
}

func acceptLoop(lfd int) {
	runtime.LockOSThread()
	buf := make([]byte, 64)
	for {
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_CLOEXEC)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ECONNABORTED) {
				continue
			}
			return
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		for {
			n, err := syscall.Read(fd, buf)
			if n <= 0 || err != nil {
				break
			}
			if _, err := syscall.Write(fd, buf[:1]); err != nil {
				break
			}
		}
		_ = syscall.Close(fd)
	}
}

// SinkResult is what a UDP sink saw: the running packet count sampled
// every few milliseconds, as (unix nanoseconds, total) pairs.
type SinkResult struct {
	Samples [][2]int64
}

// roleUDPSink counts the UDP datagrams arriving on a port until its stdin
// closes, sampling the running total.
func roleUDPSink(args []string) error {
	fs := flag.NewFlagSet("udpsink", flag.ContinueOnError)
	port := fs.Int("port", ServerUDPPort, "UDP port")
	threads := fs.Int("threads", 2, "receiving threads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	runtime.GOMAXPROCS(*threads + 2)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 16<<20)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: *port}); err != nil {
		return fmt.Errorf("bind udp :%d: %w", *port, err)
	}
	var total atomic.Int64
	for i := 0; i < *threads; i++ {
		go func() {
			runtime.LockOSThread()
			buf := make([]byte, 2048)
			for {
				if n, _, err := syscall.Recvfrom(fd, buf, 0); err == nil && n >= 0 {
					total.Add(1)
				}
			}
		}()
	}
	var res SinkResult
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			res.Samples = append(res.Samples, [2]int64{time.Now().UnixNano(), total.Load()})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fmt.Println("ready")
	waitStdinEOF()
	close(stop)
	<-done
	return printJSON(res)
}

// roleProbe checks one TCP exchange with addr: exit status 0 when a byte
// comes back within the timeout, 1 otherwise.
func roleProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	addr := fs.String("addr", "", "IP:port")
	timeout := fs.Duration("timeout", 500*time.Millisecond, "time limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return probeTCP(*addr, *timeout)
}

// roleCTFlush empties the namespace's conntrack table, so that no layout
// inherits another's connections (and their NAT bindings).
func roleCTFlush(args []string) error {
	return netlink.ConntrackTableFlush(netlink.ConntrackTable)
}
