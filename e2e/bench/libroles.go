package bench

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/nft"
	"github.com/nftbridge/nftbridge/ports"
)

// benchHost prepares the host the way the CLI's does (IP forwarding), so
// that library and CLI timings do the same work.
type benchHost struct{}

func (benchHost) Prepare() ([]string, error) {
	_, err := link.EnsureForwarding()
	return nil, err
}

// openEngine wires an engine as cmd/nftbridge does, on stateDir/state.db.
func openEngine(stateDir string) (*bridge.Engine, func(), error) {
	applier, err := nft.NewApplier()
	if err != nil {
		return nil, nil, err
	}
	eng, err := bridge.New(bridge.Config{
		StorePath: filepath.Join(stateDir, "state.db"),
		Firewall:  applier, Links: link.New(), Host: benchHost{},
	})
	if err != nil {
		applier.Close()
		return nil, nil, err
	}
	return eng, func() { applier.Close() }, nil
}

// roleLibPublishServe serves library publishes: for each line of stdin
// (a host port) it times engine.Publish of that port to the endpoint's
// server, unpublishes it untimed, and answers with the duration (ns).
func roleLibPublishServe(args []string) error {
	fs := flag.NewFlagSet("libpub", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "nftbridge state directory")
	ep := fs.String("ep", "", "endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	eng, closeEng, err := openEngine(*stateDir)
	if err != nil {
		return err
	}
	defer closeEng()
	return serveLines(func(line []byte) (any, error) {
		spec, err := ports.ParseSpec(fmt.Sprintf("%s:%d", line, ServerTCPPort))
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if _, err := eng.Publish(*ep, []ports.Spec{spec}); err != nil {
			return nil, err
		}
		d := time.Since(start).Nanoseconds()
		if _, err := eng.Unpublish(*ep, []ports.Spec{spec}); err != nil {
			return nil, err
		}
		return d, nil
	})
}

// roleLibNetwork times engine.CreateNetwork of one more network, -reps
// times, removing it (untimed) after each.
func roleLibNetwork(args []string) error {
	fs := flag.NewFlagSet("libnet", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "nftbridge state directory")
	subnet := fs.String("subnet", "", "subnet of the new network")
	bridgeName := fs.String("bridge", "", "bridge of the new network")
	reps := fs.Int("reps", 10, "repetitions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	prefix, err := netip.ParsePrefix(*subnet)
	if err != nil {
		return err
	}
	eng, closeEng, err := openEngine(*stateDir)
	if err != nil {
		return err
	}
	defer closeEng()
	var out []int64
	for i := 0; i < *reps; i++ {
		opts := bridge.DefaultNetworkOptions("extra")
		opts.Subnet, opts.Bridge = prefix, *bridgeName
		start := time.Now()
		if _, err := eng.CreateNetwork(opts); err != nil {
			return err
		}
		out = append(out, time.Since(start).Nanoseconds())
		if err := eng.RemoveNetwork("extra", false); err != nil {
			return err
		}
	}
	return printJSON(out)
}

// HoldResult is the memory of a process holding the whole state.
type HoldResult struct {
	VmRSSKB, VmHWMKB              int64
	Networks, Endpoints, Elements int
}

// roleHold stands in for a daemon: it opens the engine and netlink
// connection, reads the store and compiles the ruleset, keeps both, and
// reports its resident memory.
func roleHold(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "nftbridge state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	eng, closeEng, err := openEngine(*stateDir)
	if err != nil {
		return err
	}
	defer closeEng()
	st, err := eng.State()
	if err != nil {
		return err
	}
	rs, err := bridge.Compile(st)
	if err != nil {
		return err
	}
	runtime.GC()
	res := HoldResult{Networks: len(st.Networks), Endpoints: len(st.Endpoints)}
	for _, s := range rs.Sets {
		res.Elements += len(s.Elements)
	}
	res.VmRSSKB, res.VmHWMKB, err = procMemory(os.Getpid())
	runtime.KeepAlive(st)
	runtime.KeepAlive(rs)
	if err != nil {
		return err
	}
	return printJSON(res)
}

// procMemory reads VmRSS and VmHWM (peak RSS) of a process, in KiB.
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if key == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}
