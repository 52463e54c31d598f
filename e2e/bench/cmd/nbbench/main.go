// Command nbbench is nftbridge's benchmark (`make bench`): it builds a
// topology in throwaway network namespaces and measures the data and
// control plane of no firewall, Docker's iptables layout (legacy and nft)
// and nftbridge, then writes a report with charts to -out.
//
//	go run ./e2e/bench/cmd/nbbench -out docs/benchmarks
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nftbridge/nftbridge/e2e/bench"
)

func main() {
	bench.MaybeRunRole() // re-executed inside a namespace as server, client…
	cfg := bench.DefaultConfig()
	flag.StringVar(&cfg.OutDir, "out", cfg.OutDir, "directory for README.md, results.json and charts")
	flag.StringVar(&cfg.Nftbridge, "nftbridge", "", "nftbridge binary (default: build ./cmd/nftbridge)")
	networks := flag.String("networks", joinInts(cfg.Networks), "data plane: numbers of networks N")
	ports := flag.String("ports", joinInts(cfg.Ports), "data plane: numbers of published ports P")
	flag.IntVar(&cfg.Runs, "runs", cfg.Runs, "repetitions of every point")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "back-to-back rounds of the targets' layouts and nat-floor at the largest point")
	flag.DurationVar(&cfg.Duration, "dur", cfg.Duration, "length of each measurement")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "uncounted warm-up before each measurement")
	flag.IntVar(&cfg.TCPConc, "tcp-conc", cfg.TCPConc, "parallel TCP connections")
	flag.IntVar(&cfg.UDPConc, "udp-conc", cfg.UDPConc, "parallel UDP senders")
	publish := flag.String("publish-ports", joinInts(cfg.PublishPorts), "control plane: P while timing publish")
	flag.IntVar(&cfg.PublishN, "publish-networks", cfg.PublishN, "control plane: N while timing publish and restore")
	netNs := flag.String("network-counts", joinInts(cfg.NetworkNs), "control plane: N while timing network create")
	flag.IntVar(&cfg.NetCreateP, "network-ports", cfg.NetCreateP, "control plane: P while timing network create")
	flag.IntVar(&cfg.RestoreP, "restore-ports", cfg.RestoreP, "control plane: P of the full restore")
	flag.IntVar(&cfg.RestoreReps, "restore-reps", cfg.RestoreReps, "side-by-side repetitions of the full restores")
	flag.IntVar(&cfg.ColdRestores, "cold-restores", cfg.ColdRestores, "restores that also create the bridges")
	flag.IntVar(&cfg.CLIReps, "cli-reps", cfg.CLIReps, "CLI invocations per control-plane round")
	flag.IntVar(&cfg.LibReps, "lib-reps", cfg.LibReps, "library calls per control-plane round")
	flag.BoolVar(&cfg.SkipData, "skip-data", false, "skip the data plane (development)")
	flag.BoolVar(&cfg.SkipControl, "skip-control", false, "skip the control plane (development)")
	flag.BoolVar(&cfg.Verbose, "v", false, "log more detail")
	from := flag.String("from", "", "only rewrite the report and charts from this results.json")
	layouts := flag.String("layouts", "", "comma-separated layouts to measure (default: all)")
	flag.Parse()
	if *layouts != "" {
		cfg.Layouts = strings.Split(*layouts, ",")
	}
	var err error
	for _, f := range []struct {
		s   string
		dst *[]int
	}{{*networks, &cfg.Networks}, {*ports, &cfg.Ports}, {*publish, &cfg.PublishPorts}, {*netNs, &cfg.NetworkNs}} {
		if *f.dst, err = parseInts(f.s); err != nil {
			fmt.Fprintln(os.Stderr, "nbbench:", err)
			os.Exit(2)
		}
	}
	if *from != "" {
		if err := bench.RewriteReport(*from, cfg.OutDir); err != nil {
			fmt.Fprintln(os.Stderr, "nbbench:", err)
			os.Exit(1)
		}
		return
	}
	cfg.RestoreN = cfg.PublishN
	cfg.Command = commandLine()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nbbench:", err)
		os.Exit(1)
	}
	fmt.Printf("nbbench: wrote %s in %s (%d data series)\n", cfg.OutDir, time.Since(start).Round(time.Second), len(res.Data))
}

// commandLine is how this run was started, as a person would type it.
func commandLine() string {
	self := os.Args[0]
	if strings.Contains(self, "go-build") { // go run's temporary binary
		self = "go run ./e2e/bench/cmd/nbbench"
	}
	return strings.Join(append([]string{self}, os.Args[1:]...), " ")
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q in %q", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}
