package bridge

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/nftbridge/nftbridge/bridge/link"
	"github.com/nftbridge/nftbridge/bridge/store"
)

// RestoreReport says what a restore had to rebuild.
type RestoreReport struct {
	Networks, Endpoints, Ports int
	BridgesCreated             []string
	VethsReattached            []string
	VethsRecreated             []string
	// Missing lists endpoints whose namespace is gone: their elements stay
	// (the store is the truth) until `endpoint rm`.
	Missing []string
	Notes   []string
	// Warnings are what the restore could not do and went on without.
	Warnings []string
}

// Restore rebuilds every bridge and the whole ruleset from the store: after
// a reboot, a deleted bridge or an `nft flush ruleset`. The user chain keeps
// its rules if it still exists. The store is only read, in one read
// transaction that lasts until the kernel matches it: other processes wait
// to change the state meanwhile, so nothing they change is undone by a
// restore working from an older snapshot.
//
// The work overlaps where it can. The links are dumped while the store is
// read, and the bridges are made right as soon as the networks are decoded,
// while the endpoints still are: after a reboot, creating 1,000 bridges is
// most of a restore. The ruleset is compiled and applied on another
// goroutine meanwhile: bridges and the table take different kernel locks,
// so neither waits for the other. Forwarding is turned on, bridge netfilter
// set and containers plugged back in only once the ruleset holds, so no
// packet crosses a restored network unfiltered. If the endpoints cannot be
// read, the error comes once the bridges are done.
func (e *Engine) Restore() (*RestoreReport, error) {
	type inventoried struct {
		inv link.Inventory
		err error
	}
	dumped := make(chan inventoried, 1)
	go func() {
		inv, err := e.cfg.Links.Inventory()
		dumped <- inventoried{inv, err}
	}()
	rep := &RestoreReport{}
	var inv link.Inventory
	bridged := make(chan error, 1)
	started, finishing := false, false
	onNetworks := func(networks map[string]*store.Network) {
		started = true
		go func() {
			favourThisThread()
			d := <-dumped
			if d.err != nil {
				bridged <- d.err
				return
			}
			inv = d.inv
			bridged <- e.restoreNetworks(networks, inv, rep)
		}()
	}
	// The rest runs inside the store's read transaction: no other process
	// changes the state until the kernel matches this snapshot of it. A
	// port unpublished meanwhile would otherwise come back with it.
	err := store.ViewStaged(e.cfg.StorePath, e.cfg.LockWait, onNetworks, func(st *store.State) error {
		finishing = true
		return e.finishRestore(st, bridged, &inv, rep)
	})
	if !finishing {
		if started {
			<-bridged
		}
		return nil, err
	}
	return rep, err
}

// finishRestore is the part of Restore that needs the whole state: it
// applies the ruleset while the bridges are made (bridged says when they
// are), then prepares the host and plugs the containers back in.
func (e *Engine) finishRestore(st *store.State, bridged <-chan error, inv *link.Inventory, rep *RestoreReport) error {
	applied := make(chan error, 1)
	go func() { applied <- e.applyRuleset(st) }()
	err := <-bridged
	rep.Networks, rep.Endpoints = len(st.Networks), len(st.Endpoints)
	if rulesErr := <-applied; rulesErr != nil {
		return errors.Join(rulesErr, err)
	}
	if err != nil {
		return err
	}
	if len(st.Networks) > 0 {
		if rep.Notes, err = e.cfg.Host.Prepare(); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Networks)) {
		// A recreated bridge starts with bridge netfilter off. A failure
		// is a note, not the end of the restore: every other rule holds.
		if n := st.Networks[name]; !n.ICC {
			if err := e.cfg.Links.EnableBridgeNetfilter(n.Bridge); err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("network %q: ICC off is not enforced: %v", n.Name, err))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Endpoints)) {
		ep := st.Endpoints[name]
		rep.Ports += len(ep.Ports)
		if err := e.restoreEndpoint(ep, st.Networks[ep.Network], *inv, rep); err != nil {
			return err
		}
	}
	return nil
}

// applyRuleset compiles st and makes the kernel's table match it.
func (e *Engine) applyRuleset(st *store.State) error {
	rs, err := Compile(st)
	if err != nil {
		return err
	}
	if err := e.cfg.Firewall.Reconcile(rs); err != nil {
		return fmt.Errorf("restore ruleset: %w", err)
	}
	return nil
}

// restoreNetworks makes every network's bridge right. Missing bridges are
// created together (CreateBridges pipelines them on one socket: a restore
// after a reboot creates them all); a bridge that exists is touched only if
// the inventory says it is not right.
func (e *Engine) restoreNetworks(networks map[string]*store.Network, inv link.Inventory, rep *RestoreReport) error {
	var missing []link.BridgeSpec
	byBridge := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(networks)) {
		n := networks[name]
		addr := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
		if !inv.Exists(n.Bridge) {
			missing = append(missing, link.BridgeSpec{Name: n.Bridge, Addr: addr, MTU: n.MTU})
			byBridge[n.Bridge] = n.Name
			continue
		}
		if err := e.restoreNetwork(n, addr, inv); err != nil {
			return err
		}
	}
	created, err := e.cfg.Links.CreateBridges(missing)
	rep.BridgesCreated = append(rep.BridgesCreated, created...)
	var failed *link.BridgeError
	if errors.As(err, &failed) {
		return fmt.Errorf("restore network %q: %w", byBridge[failed.Bridge], err)
	}
	return err
}

// restoreNetwork makes an existing bridge right, touching it only if the
// inventory says it is not.
func (e *Engine) restoreNetwork(n *store.Network, addr netip.Prefix, inv link.Inventory) error {
	if !inv.BridgeReady(n.Bridge, addr, n.MTU) {
		if err := e.cfg.Links.EnsureBridge(n.Bridge, addr, n.MTU); err != nil {
			return fmt.Errorf("restore network %q: %w", n.Name, err)
		}
	}
	if inv.RouteLocalnet(n.Bridge) {
		return nil
	}
	if err := e.cfg.Links.EnableRouteLocalnet(n.Bridge); err != nil {
		return fmt.Errorf("restore network %q: %w", n.Name, err)
	}
	return nil
}

// restoreEndpoint re-enslaves a surviving veth to its (possibly recreated)
// bridge, or recreates the pair when the namespace survived but the veth
// did not.
func (e *Engine) restoreEndpoint(ep *store.Endpoint, n *store.Network, inv link.Inventory, rep *RestoreReport) error {
	if n == nil {
		return fmt.Errorf("restore endpoint %q: network %q is missing from the store", ep.Name, ep.Network)
	}
	if inv.VethOn(ep.HostVeth, n.Bridge) {
		return nil
	}
	if inv.Exists(ep.HostVeth) {
		if err := e.cfg.Links.AttachVeth(ep.HostVeth, n.Bridge, true); err != nil {
			return fmt.Errorf("restore endpoint %q: %w", ep.Name, err)
		}
		rep.VethsReattached = append(rep.VethsReattached, ep.HostVeth)
		return nil
	}
	if ep.NetNS == "" || e.cfg.Links.NetNSExists(ep.NetNS) != nil {
		rep.Missing = append(rep.Missing, ep.Name)
		return nil
	}
	cfg := link.VethConfig{
		Bridge: n.Bridge, HostName: ep.HostVeth, PeerName: ep.PeerName, NetNS: ep.NetNS,
		Addr: netip.PrefixFrom(ep.Addr, n.Subnet.Bits()), Gateway: defaultRoute(n), MTU: n.MTU, Hairpin: true,
	}
	if err := e.cfg.Links.CreateVeth(cfg); err != nil {
		return fmt.Errorf("restore endpoint %q: %w", ep.Name, err)
	}
	rep.VethsRecreated = append(rep.VethsRecreated, ep.HostVeth)
	return nil
}

// favourThisThread locks the goroutine to its thread for good and raises
// the thread's scheduling priority (nice -5), so that the goroutine's
// system calls keep a CPU while other goroutines of the process are busy.
// The thread ends with the goroutine, and its priority with it. Without
// CAP_SYS_NICE the priority stays as it was.
//
// Restore runs restoreNetworks on it: after a reboot, creating the bridges
// is most of a restore, the kernel makes them one at a time under the rtnl
// lock, and the ruleset's compile and encoding, which run beside them on
// the other goroutines, would otherwise take turns on the same CPUs.
func favourThisThread() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -5)
}
