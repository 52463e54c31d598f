package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/nft"
)

// RealContainer says where the plan's measured endpoint really lives: its
// namespace and the host end of its veth. The other endpoints have neither
// (a restore reports them missing and keeps their elements).
type RealContainer struct {
	NetNS    string
	HostVeth string
}

// PlanState is the nftbridge store state for a plan: the same networks,
// endpoints and ports an operator would create with `network create`,
// `endpoint add` and `port publish`, written directly so that a plan with
// 10,000 ports is ready in a second (a restore then programs it).
func PlanState(p *Plan, real RealContainer) *store.State {
	st := store.NewState()
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range p.Networks {
		st.Networks[n.Name] = &store.Network{
			Name: n.Name, ID: fakeID("net", n.Name), Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway,
			ICC: true, Masquerade: true, Created: created,
		}
	}
	for i, e := range p.Endpoints {
		id := fakeID("ep", e.Name)
		ep := &store.Endpoint{
			Name: e.Name, ID: id, Network: p.Networks[e.Network].Name, Addr: e.Addr,
			HostVeth: "nbv" + id[:10], PeerName: "nbp" + id[:10], Created: created,
		}
		if i == len(p.Endpoints)-1 && real.NetNS != "" {
			ep.NetNS, ep.HostVeth = real.NetNS, real.HostVeth
		}
		for _, port := range e.Ports {
			ep.Ports = append(ep.Ports, store.Port{Proto: port.Proto, HostIP: netip.IPv4Unspecified(),
				HostPort: port.HostPort, ContainerPort: port.ContainerPort})
		}
		st.Endpoints[e.Name] = ep
	}
	return st
}

// fakeID is a stable Docker-style 64-hex-digit identifier.
func fakeID(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + "/" + name))
	return hex.EncodeToString(sum[:])
}

// WriteStore creates dir/state.db holding exactly the plan's state.
func WriteStore(dir string, p *Plan, real RealContainer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, "state.db")
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	s, err := store.Open(path, time.Minute)
	if err != nil {
		return err
	}
	defer s.Close()
	want := PlanState(p, real)
	return s.Update(func(st *store.State) error {
		st.Networks, st.Endpoints = want.Networks, want.Endpoints
		return nil
	})
}

// RenderPlan is the nft text of the table nftbridge programs for the plan:
// what `nft -f` loads in the restore comparison.
func RenderPlan(p *Plan, real RealContainer) (string, error) {
	rs, err := bridge.Compile(PlanState(p, real))
	if err != nil {
		return "", fmt.Errorf("compile plan: %w", err)
	}
	return nft.Render(rs), nil
}
