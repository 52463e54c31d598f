package bench

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LoadResult is what a load generator did inside its measurement window
// [Start, End) (unix nanoseconds), after a warm-up that is not counted.
type LoadResult struct {
	Ops    int64
	Errors int64
	Start  int64
	End    int64
}

// Rate is operations per second over the window.
func (r LoadResult) Rate() float64 {
	if r.End <= r.Start {
		return 0
	}
	return float64(r.Ops) / (float64(r.End-r.Start) / 1e9)
}

type loadFlags struct {
	addr   *string
	conc   *int
	warmup *time.Duration
	dur    *time.Duration
}

func parseLoadFlags(name string, args []string, conc int) (loadFlags, *syscall.SockaddrInet4, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := loadFlags{
		addr:   fs.String("addr", "", "IP:port"),
		conc:   fs.Int("conc", conc, "parallel connections (one thread each)"),
		warmup: fs.Duration("warmup", 300*time.Millisecond, "not counted"),
		dur:    fs.Duration("dur", 2*time.Second, "measurement window"),
	}
	if err := fs.Parse(args); err != nil {
		return f, nil, err
	}
	ap, err := netip.ParseAddrPort(*f.addr)
	if err != nil || !ap.Addr().Is4() {
		return f, nil, fmt.Errorf("-addr %q: want IPv4:port", *f.addr)
	}
	return f, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, nil
}

// runWorkers runs conc workers, each on its own locked thread, calling op
// until the window closes; op reports success. Operations that finish
// inside the window are counted.
func runWorkers(f loadFlags, setup func() (op func() error, done func(), err error)) (LoadResult, error) {
	runtime.GOMAXPROCS(*f.conc + 4)
	begin := time.Now()
	start, end := begin.Add(*f.warmup), begin.Add(*f.warmup+*f.dur)
	var ops, errs atomic.Int64
	var wg sync.WaitGroup
	setupErr := make(chan error, *f.conc)
	for i := 0; i < *f.conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			op, done, err := setup()
			if err != nil {
				setupErr <- err
				return
			}
			defer done()
			for {
				err := op()
				now := time.Now()
				if !now.Before(end) {
					return
				}
				if now.Before(start) {
					continue
				}
				if err != nil {
					errs.Add(1)
				} else {
					ops.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(setupErr)
	if err := <-setupErr; err != nil {
		return LoadResult{}, err
	}
	return LoadResult{Ops: ops.Load(), Errors: errs.Load(), Start: start.UnixNano(), End: end.UnixNano()}, nil
}

// tcpSocket is a blocking TCP socket with 1 s send/receive timeouts (so a
// dropped SYN costs a second, not minutes) and abortive close: the 2 s of
// 30,000 connections a second must not park 60,000 ports in TIME_WAIT.
func tcpSocket() (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	tv := syscall.Timeval{Sec: 1}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	return fd, nil
}

var errShortReply = errors.New("no reply byte")

// connect is a blocking connect(2) that survives a signal. Go's runtime
// preempts threads with SIGURG, and a connect it interrupts (EINTR) goes on
// in the kernel: wait until the socket is writable and read the outcome
// instead of failing (a run at N=1000 lost a layout to it once).
func connect(fd int, sa syscall.Sockaddr) error {
	err := syscall.Connect(fd, sa)
	if !errors.Is(err, syscall.EINTR) {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(pfd, 1000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return syscall.ETIMEDOUT
		}
		break
	}
	soErr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err != nil {
		return err
	}
	if soErr != 0 {
		return syscall.Errno(soErr)
	}
	return nil
}

// exchange sends one byte and waits for one back.
func exchange(fd int, buf []byte) error {
	if _, err := syscall.Write(fd, buf[:1]); err != nil {
		return err
	}
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return err
	}
	if n < 1 {
		return errShortReply
	}
	return nil
}

// crrOnce is one whole connection: connect, 1-byte request, 1-byte reply,
// close.
func crrOnce(sa *syscall.SockaddrInet4, buf []byte) error {
	fd, err := tcpSocket()
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := connect(fd, sa); err != nil {
		return err
	}
	return exchange(fd, buf)
}

// roleCRR measures new TCP connections per second.
func roleCRR(args []string) error {
	f, sa, err := parseLoadFlags("crr", args, 16)
	if err != nil {
		return err
	}
	res, err := runWorkers(f, func() (func() error, func(), error) {
		buf := make([]byte, 64)
		return func() error { return crrOnce(sa, buf) }, func() {}, nil
	})
	if err != nil {
		return err
	}
	return printJSON(res)
}

// roleRR measures request/response transactions per second on
// established connections.
func roleRR(args []string) error {
	f, sa, err := parseLoadFlags("rr", args, 16)
	if err != nil {
		return err
	}
	res, err := runWorkers(f, func() (func() error, func(), error) {
		fd, err := tcpSocket()
		if err != nil {
			return nil, nil, err
		}
		if err := connect(fd, sa); err != nil {
			syscall.Close(fd)
			return nil, nil, fmt.Errorf("connect: %w", err)
		}
		buf := make([]byte, 64)
		return func() error { return exchange(fd, buf) }, func() { syscall.Close(fd) }, nil
	})
	if err != nil {
		return err
	}
	return printJSON(res)
}

// roleUDPSend sends small UDP datagrams as fast as it can, one connected
// socket (one flow) per thread; Ops counts datagrams sent.
func roleUDPSend(args []string) error {
	f, sa, err := parseLoadFlags("udp", args, 1)
	if err != nil {
		return err
	}
	res, err := runWorkers(f, func() (func() error, func(), error) {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, nil, err
		}
		if err := syscall.Connect(fd, sa); err != nil {
			syscall.Close(fd)
			return nil, nil, err
		}
		payload := make([]byte, 18) // 18 B payload: a 64-byte Ethernet frame
		return func() error {
			_, err := syscall.Write(fd, payload)
			return err
		}, func() { syscall.Close(fd) }, nil
	})
	if err != nil {
		return err
	}
	return printJSON(res)
}

// probeTCP does one exchange with addr within timeout.
func probeTCP(addr string, timeout time.Duration) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if err := connect(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	if err := exchange(fd, make([]byte, 8)); err != nil {
		return fmt.Errorf("exchange with %s: %w", addr, err)
	}
	return nil
}
