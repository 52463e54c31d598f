package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/nft"
)

// storePath is the state file: --state-dir, $NFTBRIDGE_STATE_DIR, or the default.
func (a *app) storePath() string {
	if a.stateDir != "" {
		return filepath.Join(a.stateDir, "state.db")
	}
	return store.DefaultPath()
}

// engine wires the real store, netlink applier and link manager.
func (a *app) engine() (*bridge.Engine, error) {
	applier, err := nft.NewApplier()
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	return bridge.New(bridge.Config{
		StorePath: a.storePath(),
		Firewall:  applier,
		Links:     link.New(),
		Host:      &hostPrep{app: a},
	})
}

// state reads the store without touching the kernel.
func (a *app) state() (*store.State, error) {
	return store.Snapshot(a.storePath(), 2*time.Minute)
}

// hostPrep turns on what bridged networks need in the host namespace and
// says so when it changes something.
type hostPrep struct{ app *app }

func (h *hostPrep) Prepare() ([]string, error) {
	var notes []string
	changed, err := link.EnsureForwarding()
	if err != nil {
		return nil, err
	}
	if changed {
		notes = append(notes, "enabled net.ipv4.ip_forward")
	}
	for _, n := range notes {
		h.app.log.Warn(n)
	}
	return notes, nil
}

// sortedNetworks and sortedEndpoints list records in name order.
func sortedNetworks(st *store.State) []*store.Network {
	return sortedValues(st.Networks)
}

func sortedEndpoints(st *store.State) []*store.Endpoint {
	return sortedValues(st.Endpoints)
}

func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

func runRuleset(a *app, args []string) error {
	f := newFlags("nftbridge ruleset", "", "Print the table nftbridge programs, in nft syntax (compiled from the store).\n"+
		"The user chain's own rules are the admin's: see `nft list chain ip nftbridge user`.", a)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	st, err := a.state()
	if err != nil {
		return err
	}
	rs, err := bridge.Compile(st)
	if err != nil {
		return err
	}
	fmt.Fprint(a.stdout, nft.Render(rs))
	return nil
}

func runRestore(a *app, args []string) error {
	f := newFlags("nftbridge restore", "", "Rebuild bridges, veths and the whole ruleset from the store.", a)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	restoreGC()
	start := time.Now()
	rep, err := eng.Restore()
	if err != nil {
		return err
	}
	a.log.Info("restored", "networks", rep.Networks, "endpoints", rep.Endpoints, "ports", rep.Ports,
		"bridges_created", len(rep.BridgesCreated), "veths_reattached", len(rep.VethsReattached),
		"veths_recreated", len(rep.VethsRecreated), "elapsed", time.Since(start).Round(time.Millisecond))
	for _, w := range rep.Warnings {
		a.log.Warn(w)
	}
	if len(rep.Missing) > 0 {
		// One line, not one per endpoint: after a reboot that can be
		// thousands, and the operator needs the count and a few names.
		a.log.Warn("endpoints whose namespace is gone; their elements stay until `endpoint rm`",
			"count", len(rep.Missing), "endpoints", someNames(rep.Missing, 10))
	}
	return nil
}

// someNames lists at most limit names, and how many more there are.
func someNames(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, " ")
	}
	return fmt.Sprintf("%s … (%d more)", strings.Join(names[:limit], " "), len(names)-limit)
}

// restoreGC makes the garbage collector of this short-lived process lazier:
// a restore of 10,000 endpoints allocates ~70 MB of short-lived records,
// elements and netlink messages over a live heap of ~25 MB, and collecting
// at the default GOGC=100 was a sixth of its CPU. Collecting at 5x the live
// heap, with a 64 MiB soft limit, keeps the peak RSS near 55 MiB. GOGC or
// GOMEMLIMIT in the environment win.
func restoreGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
}
