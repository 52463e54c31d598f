package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Control-plane methods (series names in the report).
const (
	MethodCLI        = "nftbridge CLI"
	MethodLib        = "nftbridge library"
	MethodRestore    = "nftbridge restore"
	MethodColdRest   = "nftbridge restore, creating the bridges"
	MethodBridgesIP  = "the same bridges alone: ip -batch and sysctl (no ruleset)"
	MethodNftF       = "nft -f (nftbridge's table as text)"
	MethodLegacyRest = "iptables-legacy-restore (Docker's rules)"
	MethodNftRest    = "iptables-nft-restore (Docker's rules)"
	MethodLegacyPub  = "Docker's iptables commands, legacy"
	MethodNftPub     = "Docker's iptables commands, nft"
)

// cpPoint is a control-plane plan with its files; no container is real.
type cpPoint struct {
	plan                     *Plan
	stateDir, rules, nftText string
}

func (b *Bench) newCPPoint(n, p int) (*cpPoint, error) {
	plan, err := NewPlan(n, p)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.tmp, fmt.Sprintf("cp-n%d-p%d", n, p))
	cp := &cpPoint{plan: plan, stateDir: filepath.Join(dir, "state"),
		rules: filepath.Join(dir, "docker.rules"), nftText: filepath.Join(dir, "nftbridge.nft")}
	if err := WriteStore(cp.stateDir, plan, RealContainer{}); err != nil {
		return nil, err
	}
	text, err := RenderPlan(plan, RealContainer{})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cp.nftText, []byte(text), 0o600); err != nil {
		return nil, err
	}
	return cp, os.WriteFile(cp.rules, []byte(DockerRules(plan)), 0o600)
}

func (b *Bench) nb(stateDir string, args ...string) []string {
	return append([]string{b.cfg.Nftbridge, "--state-dir", stateDir}, args...)
}

// controlPlane times restore, publish and network create. It runs after the
// data plane, in namespaces of its own with no traffic.
func (b *Bench) controlPlane(ctx context.Context) error {
	// Deleting namespaces with a thousand bridges goes on in the kernel
	// for a while: let it finish before timing anything.
	b.settle(ctx, "the data plane")
	cp, err := b.restoreBench(ctx)
	if err != nil {
		return err
	}
	if err := b.publishBench(ctx, cp); err != nil {
		return err
	}
	return b.networkBench(ctx, cp)
}

// restoreBench times full restores of RestoreN networks and RestoreP ports
// and returns the namespaces it leaves (bridges created, tables empty):
// cp for nftables, cp+"l" for iptables-legacy.
func (b *Bench) restoreBench(ctx context.Context) ([2]string, error) {
	var ns [2]string
	pt, err := b.newCPPoint(b.cfg.RestoreN, b.cfg.RestoreP)
	if err != nil {
		return ns, err
	}
	b.logf("control plane: restore of N=%d P=%d", b.cfg.RestoreN, b.cfg.RestoreP)
	if ns[0], err = b.coldRestores(ctx, pt); err != nil {
		return ns, err
	}
	if ns[1], err = b.sb.NewNS("cpl"); err != nil {
		return ns, err
	}
	for r := 0; r < max(b.cfg.RestoreReps, 1); r++ {
		if err := ctx.Err(); err != nil {
			return ns, err
		}
		var l StepList
		flush := Cmd("nft", "flush", "ruleset")
		l.Add(-1, flush)
		l.Add(0, Timed(b.nb(pt.stateDir, "restore")...))
		l.Add(-1, flush)
		l.Add(1, Timed("nft", "-f", pt.nftText))
		l.Add(-1, flush)
		l.Add(2, Timed("iptables-nft-restore", pt.rules))
		l.Add(-1, flush)
		if err := b.recordSteps(ns[0], &l, KindRestore, pt.plan.TCPPorts(), MethodRestore, MethodNftF, MethodNftRest); err != nil {
			return ns, err
		}
		var legacy StepList
		empty := filepath.Join(b.tmp, "empty.rules")
		if err := os.WriteFile(empty, []byte(EmptyDockerRules()), 0o600); err != nil {
			return ns, err
		}
		legacy.Add(-1, Cmd("iptables-legacy-restore", empty))
		legacy.Add(0, Timed("iptables-legacy-restore", pt.rules))
		if err := b.recordSteps(ns[1], &legacy, KindRestore, pt.plan.TCPPorts(), MethodLegacyRest); err != nil {
			return ns, err
		}
	}
	b.memory(ctx, ns[0], pt)
	return ns, nil
}

// recordSteps runs a step list and records repetition i under methods[i].
func (b *Bench) recordSteps(ns string, l *StepList, kind string, x int, methods ...string) error {
	res, err := b.sb.RunSteps(ns, b.tmp, l.Steps)
	if err != nil {
		return err
	}
	ms, rss := l.Reps(res)
	for i := range ms {
		method := methods[min(i, len(methods)-1)]
		b.res.addControl(kind, x, method, ms[i], rss[i])
	}
	return nil
}

// coldRestores restores into fresh namespaces, so that nftbridge creates
// every bridge too; the last namespace is kept for the rest.
func (b *Bench) coldRestores(ctx context.Context, pt *cpPoint) (string, error) {
	reps := max(b.cfg.ColdRestores, 1)
	for k := 0; k < reps; k++ {
		ns, err := b.sb.NewNS(fmt.Sprintf("cold%d", k))
		if err != nil {
			return "", err
		}
		var l StepList
		l.Add(0, Timed(b.nb(pt.stateDir, "restore")...))
		if err := b.recordSteps(ns, &l, KindRestore, pt.plan.TCPPorts(), MethodColdRest); err != nil {
			return "", err
		}
		if err := b.bridgesAlone(ctx, pt, k); err != nil {
			return "", err
		}
		if k == reps-1 {
			return ns, nil
		}
		b.sb.DelNS(ns)
		b.settle(ctx, "a cold restore")
	}
	return "", nil
}

// bridgesAlone times the kernel work of a cold restore without nftbridge:
// the same bridges made by iproute2 and sysctl in a fresh namespace, each
// created down, IPv6 off and route_localnet on, then addressed and up, as
// CreateBridges leaves them. It is the floor of any restore that creates
// them: what the kernel takes for 1,000 bridges on this machine.
func (b *Bench) bridgesAlone(ctx context.Context, pt *cpPoint, k int) error {
	var create, configure strings.Builder
	sysctl := []string{"sysctl", "-q", "-w"}
	for _, n := range pt.plan.Networks {
		fmt.Fprintf(&create, "link add %s type bridge\n", n.Bridge)
		fmt.Fprintf(&configure, "addr add %s dev %s\nlink set %s up\n",
			netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), n.Bridge, n.Bridge)
		sysctl = append(sysctl, "net.ipv6.conf."+n.Bridge+".disable_ipv6=1", "net.ipv4.conf."+n.Bridge+".route_localnet=1")
	}
	files := [2]string{filepath.Join(b.tmp, "bridges-create.ip"), filepath.Join(b.tmp, "bridges-configure.ip")}
	for i, text := range []string{create.String(), configure.String()} {
		if err := os.WriteFile(files[i], []byte(text), 0o600); err != nil {
			return err
		}
	}
	ns, err := b.sb.NewNS(fmt.Sprintf("bridges%d", k))
	if err != nil {
		return err
	}
	b.settle(ctx, "a cold restore, before the bridges alone")
	var l StepList
	l.Add(0, Timed("ip", "-batch", files[0]), Timed(sysctl...), Timed("ip", "-batch", files[1]))
	if err := b.recordSteps(ns, &l, KindRestore, pt.plan.TCPPorts(), MethodBridgesIP); err != nil {
		return err
	}
	b.sb.DelNS(ns)
	b.settle(ctx, "the bridges alone")
	return nil
}

// pubPoint is one P of the publish benchmark: its own namespace holding the
// state at that P, with a step server (CLI) and a library server in it.
type pubPoint struct {
	pt         *cpPoint
	steps, lib *Proc
}

// publishBench times publishing one more port with P ports published. Each
// P lives in its own namespace, so that the calls can alternate between
// them one by one (the P that goes first rotates): a slow stretch of the
// machine then lands on every P alike, as in the data plane's rounds.
// Docker's commands, which have no target of their own, run round by round
// in ns as before.
func (b *Bench) publishBench(ctx context.Context, ns [2]string) error {
	b.logf("control plane: publish one port at P=%v, N=%d", b.cfg.PublishPorts, b.cfg.PublishN)
	var pts []*pubPoint
	defer func() {
		for _, pp := range pts {
			for _, p := range []*Proc{pp.steps, pp.lib} {
				if p != nil {
					p.Kill()
				}
			}
		}
	}()
	for _, p := range b.cfg.PublishPorts {
		pt, err := b.newCPPoint(b.cfg.PublishN, p)
		if err != nil {
			return err
		}
		pp := &pubPoint{pt: pt}
		pts = append(pts, pp)
		where, err := b.sb.NewNS(fmt.Sprintf("pub%d", p))
		if err != nil {
			return err
		}
		if _, err := b.sb.RunSteps(where, b.tmp, []Step{Cmd(b.nb(pt.stateDir, "restore")...)}); err != nil {
			return fmt.Errorf("publish at P=%d: %w", p, err)
		}
		if pp.steps, err = b.sb.StartRole(ctx, where, "stepserve"); err != nil {
			return err
		}
		if pp.lib, err = b.sb.StartRole(ctx, where, "libpub", "-state-dir", pt.stateDir, "-ep", pt.plan.Measured().Name); err != nil {
			return err
		}
	}
	b.settle(ctx, "restoring the publish namespaces")
	for r := 0; r < b.cfg.Runs; r++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		port0 := 40000 + r*100
		for k := 0; k < b.cfg.CLIReps; k++ {
			for i := range pts {
				pp := pts[(i+r*b.cfg.CLIReps+k)%len(pts)]
				if err := b.cliPublish(pp, port0+k); err != nil {
					return fmt.Errorf("publish at P=%d: %w", pp.pt.plan.TCPPorts(), err)
				}
			}
		}
		for k := 0; k < b.cfg.LibReps; k++ {
			for i := range pts {
				pp := pts[(i+r*b.cfg.LibReps+k)%len(pts)]
				out, err := pp.lib.Call([]byte(strconv.Itoa(port0 + 50 + k)))
				if err != nil {
					return fmt.Errorf("publish at P=%d: %w", pp.pt.plan.TCPPorts(), err)
				}
				var d int64
				if err := json.Unmarshal(out, &d); err != nil {
					return fmt.Errorf("libpub answer %q: %w", out, err)
				}
				b.res.addControl(KindPublish, pp.pt.plan.TCPPorts(), MethodLib, float64(d)/1e6, 0)
			}
		}
		for _, pp := range pts {
			if err := b.dockerPublish(ns[0], "iptables-nft", pp.pt, port0, MethodNftPub); err != nil {
				return err
			}
			if err := b.dockerPublish(ns[1], "iptables-legacy", pp.pt, port0, MethodLegacyPub); err != nil {
				return err
			}
		}
	}
	for _, pp := range pts {
		b.sb.DelNS(pp.steps.ns)
	}
	b.settle(ctx, "the publish namespaces")
	return nil
}

// cliPublish times one `nftbridge port publish` of hostPort at pp's P and
// unpublishes it (untimed).
func (b *Bench) cliPublish(pp *pubPoint, hostPort int) error {
	ep := pp.pt.plan.Measured()
	spec := fmt.Sprintf("%d:%d", hostPort, ServerTCPPort)
	var res StepResult
	for _, s := range []Step{
		Timed(b.nb(pp.pt.stateDir, "port", "publish", ep.Name, "-p", spec)...),
		Cmd(b.nb(pp.pt.stateDir, "port", "unpublish", ep.Name, "-p", spec)...),
	} {
		line, err := json.Marshal(s)
		if err != nil {
			return err
		}
		out, err := pp.steps.Call(line)
		if err != nil {
			return err
		}
		if !s.Timed {
			continue
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("stepserve answer %q: %w", out, err)
		}
	}
	b.res.addControl(KindPublish, pp.pt.plan.TCPPorts(), MethodCLI, float64(res.WallNS)/1e6, res.MaxRSSKB)
	return nil
}

// dockerPublish loads Docker's rules and times the commands Docker runs
// to publish one more port (checks and appends; deletes are not timed).
func (b *Bench) dockerPublish(ns, bin string, pt *cpPoint, port0 int, method string) error {
	var l StepList
	if bin == "iptables-nft" {
		l.Add(-1, Cmd("nft", "flush", "ruleset"))
	}
	l.Add(-1, Cmd(bin+"-restore", pt.rules))
	for k := 0; k < b.cfg.CLIReps; k++ {
		do, undo := DockerPublishSteps(bin, pt.plan, pt.plan.Measured(), uint16(port0+k))
		for _, argv := range do {
			s := Timed(argv...)
			s.AllowFail = argv[4] == "-C"
			l.Add(k, s)
		}
		for _, argv := range undo {
			l.Add(-1, Cmd(argv...))
		}
	}
	if bin == "iptables-nft" {
		l.Add(-1, Cmd("nft", "flush", "ruleset"))
	}
	return b.recordSteps(ns, &l, KindPublish, pt.plan.TCPPorts(), method)
}

// networkBench times creating one more network with N networks.
func (b *Bench) networkBench(ctx context.Context, ns [2]string) error {
	for _, n := range b.cfg.NetworkNs {
		pt, err := b.newCPPoint(n, b.cfg.NetCreateP)
		if err != nil {
			return err
		}
		where := ns[0]
		if n != b.cfg.RestoreN {
			// Other N: other subnets, so another namespace.
			if where, err = b.sb.NewNS(fmt.Sprintf("cpn%d", n)); err != nil {
				return err
			}
		}
		b.logf("control plane: create one network at N=%d", n)
		for r := 0; r < b.cfg.Runs; r++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := b.networkRound(where, pt, n); err != nil {
				return fmt.Errorf("network create at N=%d: %w", n, err)
			}
		}
	}
	return nil
}

func (b *Bench) networkRound(ns string, pt *cpPoint, n int) error {
	subnet, br := SpareSubnet(n)
	var l StepList
	l.Add(-1, Cmd("nft", "flush", "ruleset"), Cmd(b.nb(pt.stateDir, "restore")...))
	for k := 0; k < b.cfg.CLIReps; k++ {
		l.Add(k, Timed(b.nb(pt.stateDir, "network", "create", "--subnet", subnet.String(), "--bridge", br, "extra")...))
		l.Add(-1, Cmd(b.nb(pt.stateDir, "network", "rm", "extra")...))
	}
	if err := b.recordSteps(ns, &l, KindNetwork, n, MethodCLI); err != nil {
		return err
	}
	out, err := b.sb.RunRole(ns, "libnet", "-state-dir", pt.stateDir, "-subnet", subnet.String(),
		"-bridge", br, "-reps", strconv.Itoa(b.cfg.LibReps))
	if err != nil {
		return err
	}
	var lib []int64
	if err := json.Unmarshal(out, &lib); err != nil {
		return fmt.Errorf("libnet output %q: %w", out, err)
	}
	for _, d := range lib {
		b.res.addControl(KindNetwork, n, MethodLib, float64(d)/1e6, 0)
	}
	_, err = Sh(ns, "nft", "flush", "ruleset")
	return err
}
