package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Layout names, in report order.
const (
	LayoutNone      = "none"
	LayoutLegacy    = "docker-iptables-legacy"
	LayoutIptNFT    = "docker-iptables-nft"
	LayoutNftbridge = "nftbridge"
	// LayoutNftbridgeN1P1 (diagnostic, largest point only) is nftbridge
	// holding just the measured network and its ports, on the same
	// topology and interleaved with the others: nftbridge's own figure at
	// N=1, P=1 without the machine's drift between points, the flat
	// reference.
	LayoutNftbridgeN1P1 = "nftbridge-n1p1"
)

// Layouts is every layout, in report order.
func Layouts() []string {
	return []string{LayoutNone, LayoutLegacy, LayoutIptNFT, LayoutNftbridge}
}

// Point is one (N, P) data point with its generated artifacts.
type Point struct {
	N, P      int
	Plan      *Plan
	StateDir  string // nftbridge store for the main stack
	N1P1Dir   string // nftbridge store with the measured network and endpoint only
	RulesFile string // Docker's rules, for iptables-restore
	FloorFile string // the nat-floor table, for nft -f
}

// NewPoint generates the plan and writes the store and rules under dir.
func NewPoint(dir string, n, p int, real RealContainer) (*Point, error) {
	plan, err := NewPlan(n, p)
	if err != nil {
		return nil, err
	}
	pt := &Point{N: n, P: p, Plan: plan,
		StateDir:  filepath.Join(dir, fmt.Sprintf("state-n%d-p%d", n, p)),
		N1P1Dir:   filepath.Join(dir, fmt.Sprintf("state-n%d-p%d-n1p1", n, p)),
		RulesFile: filepath.Join(dir, fmt.Sprintf("docker-n%d-p%d.rules", n, p)),
		FloorFile: filepath.Join(dir, fmt.Sprintf("floor-n%d-p%d.nft", n, p))}
	if err := WriteStore(pt.StateDir, plan, real); err != nil {
		return nil, err
	}
	if err := WriteStore(pt.N1P1Dir, plan.MeasuredOnly(), real); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pt.RulesFile, []byte(DockerRules(plan)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pt.FloorFile, []byte(FloorRules(plan)), 0o600); err != nil {
		return nil, err
	}
	return pt, nil
}

// stackFor is the stack a layout is measured on.
func (b *Bench) stackFor(layout string) *Stack {
	if layout == LayoutLegacy {
		return b.legacy
	}
	return b.main
}

// load installs a layout for a point and checks that it is in effect: the
// measured port answers, and (with a firewall) the container's own address
// does not. It returns where to send traffic.
func (b *Bench) load(layout string, pt *Point) (Dest, error) {
	st := b.stackFor(layout)
	targets := PublishedTargets(pt.Plan)
	var err error
	switch layout {
	case LayoutNone:
		targets, err = DirectTargets(pt.Plan), expectNoFirewall(st.Host)
	case LayoutLegacy:
		_, err = Sh(st.Host, "iptables-legacy-restore", pt.RulesFile)
	case LayoutIptNFT:
		_, err = Sh(st.Host, "iptables-nft-restore", pt.RulesFile)
	case LayoutNftbridge:
		_, err = Sh(st.Host, b.cfg.Nftbridge, "--state-dir", pt.StateDir, "restore")
	case LayoutNftbridgeN1P1:
		_, err = Sh(st.Host, b.cfg.Nftbridge, "--state-dir", pt.N1P1Dir, "restore")
	case LayoutFloor:
		_, err = Sh(st.Host, "nft", "-f", pt.FloorFile)
	default:
		err = fmt.Errorf("unknown layout %q", layout)
	}
	if err != nil {
		return targets, fmt.Errorf("load %s: %w", layout, err)
	}
	if _, err := b.sb.RunRole(st.Host, "ctflush"); err != nil {
		return targets, err
	}
	if !b.probeRetry(st, targets.TCP) {
		return targets, fmt.Errorf("layout %s at N=%d P=%d: %s does not answer from outside", layout, pt.N, pt.P, targets.TCP)
	}
	// The floor filters nothing: only the firewalls must block the container's own address.
	if layout != LayoutNone && layout != LayoutFloor && b.sb.Probe(st, DirectTargets(pt.Plan).TCP, 300*time.Millisecond) {
		return targets, fmt.Errorf("layout %s: the container's own address answers from outside: firewall not in effect", layout)
	}
	return targets, nil
}

// probeRetry allows a moment for bridges and ARP to settle.
func (b *Bench) probeRetry(st *Stack, addr string) bool {
	for i := 0; i < 5; i++ {
		if b.sb.Probe(st, addr, time.Second) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// unload removes a layout. iptables-legacy stays loaded in its own stack
// (the next load replaces it).
func (b *Bench) unload(layout string) error {
	if layout == LayoutLegacy || layout == LayoutNone {
		return nil
	}
	return flushNFT(b.stackFor(layout).Host)
}

// flushNFT empties the namespace's nftables ruleset (our table, or the
// tables iptables-nft made) and checks that nothing is left.
func flushNFT(ns string) error {
	if _, err := Sh(ns, "nft", "flush", "ruleset"); err != nil {
		return err
	}
	return expectNoFirewall(ns)
}

// expectNoFirewall fails if the namespace has any nftables table.
func expectNoFirewall(ns string) error {
	out, err := Sh(ns, "nft", "list", "tables")
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("namespace %s still has tables: %s", ns, s)
	}
	return nil
}
