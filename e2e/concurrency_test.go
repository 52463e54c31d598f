package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nftbridge/nftbridge/ports"
)

const (
	publishers        = 8
	portsPerPublisher = 50
	explicitBase      = 20000 // host ports of the explicit publishers
	sharedBase        = 1000  // container ports of the shared endpoint
)

// portRow is one row of `port ls --format json`.
type portRow struct {
	Endpoint, Network, Binding, Container string
}

// TestConcurrentPublish: eight CLI processes publish fifty ports each at the
// same moment. Half publish explicit host ports on their own endpoints, half
// ask for ephemeral host ports on one shared endpoint (they race for the
// same free ports). The store's lock must serialise them so that every port
// lands once, in the store and in the kernel's map.
func TestConcurrentPublish(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.network("nc", "172.29.0.0/16")
	for i := range publishers / 2 {
		ns, _ := w.endpoint("nc", fmt.Sprintf("own%d", i))
		w.serve(ns, []uint16{80}, nil)
	}
	shared, _ := w.endpoint("nc", "shared")
	w.serve(shared, []uint16{sharedBase}, nil)

	results := make([]cmdResult, publishers)
	var wg sync.WaitGroup
	for i := range publishers {
		wg.Go(func() { results[i] = w.nb(publishArgs(i)...) })
	}
	wg.Wait()
	for i, res := range results {
		if res.code != 0 {
			t.Errorf("publisher %d: %v", i, res)
		}
	}
	want := publishers * portsPerPublisher
	rows := w.portRows()
	if len(rows) != want {
		t.Errorf("port ls lists %d ports, want %d", len(rows), want)
	}
	checkUniqueHostPorts(t, rows)
	if n := w.dnatElements(); n != want {
		t.Errorf("kernel DNAT maps have %d elements, want %d", n, want)
	}
	// A sample of the ports work end to end.
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, explicitBase), outsideAddr)
	w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, explicitBase+publishers/2*portsPerPublisher-1), outsideAddr)
	if port := hostPortFor(t, rows, "shared", sharedBase); port != 0 {
		w.expectPeer(t, w.outside, "tcp", hostPort(hostAddr, int(port)), outsideAddr)
	}
}

// publishArgs is publisher i's command line.
func publishArgs(i int) []string {
	var args []string
	if i < publishers/2 {
		args = []string{"port", "publish", fmt.Sprintf("own%d", i)}
		for j := range portsPerPublisher {
			args = append(args, "-p", fmt.Sprintf("%d:80", explicitBase+i*portsPerPublisher+j))
		}
		return args
	}
	args = []string{"port", "publish", "shared"}
	for j := range portsPerPublisher {
		args = append(args, "-p", strconv.Itoa(sharedBase+(i-publishers/2)*portsPerPublisher+j))
	}
	return args
}

func (w *world) portRows() []portRow {
	w.t.Helper()
	var rows []portRow
	if err := json.Unmarshal([]byte(w.mustNB("port", "ls", "--format", "json")), &rows); err != nil {
		w.t.Fatalf("port ls --format json: %v", err)
	}
	return rows
}

func checkUniqueHostPorts(t *testing.T, rows []portRow) {
	t.Helper()
	seen := map[string]string{}
	for _, r := range rows {
		b, err := ports.ParseBinding(r.Binding)
		if err != nil {
			t.Errorf("port ls row %+v: %v", r, err)
			continue
		}
		key := fmt.Sprintf("%s/%d", b.Proto, b.HostPort)
		if prev, dup := seen[key]; dup {
			t.Errorf("host port %s published twice: by %s and %s", key, prev, r.Endpoint)
		}
		seen[key] = r.Endpoint
	}
}

// hostPortFor finds the host port bound to an endpoint's container port.
func hostPortFor(t *testing.T, rows []portRow, endpoint string, containerPort uint16) uint16 {
	t.Helper()
	for _, r := range rows {
		b, err := ports.ParseBinding(r.Binding)
		if err == nil && r.Endpoint == endpoint && b.ContainerPort == containerPort {
			return b.HostPort
		}
	}
	t.Errorf("no published port for %s:%d in port ls", endpoint, containerPort)
	return 0
}

// elementCounts counts the elements of every set and map of our table in
// the kernel, by name, from `nft -j list table`.
func (w *world) elementCounts() map[string]int {
	w.t.Helper()
	type set struct {
		Name string            `json:"name"`
		Elem []json.RawMessage `json:"elem"`
	}
	var listing struct {
		Nftables []struct {
			Set *set `json:"set"`
			Map *set `json:"map"`
		} `json:"nftables"`
	}
	out := w.nft("-j", "list", "table", "ip", "nftbridge")
	if err := json.Unmarshal([]byte(out), &listing); err != nil {
		w.t.Fatalf("nft -j list table ip nftbridge: %v", err)
	}
	counts := map[string]int{}
	for _, obj := range listing.Nftables {
		for _, s := range []*set{obj.Set, obj.Map} {
			if s != nil {
				counts[s.Name] = len(s.Elem)
			}
		}
	}
	return counts
}

// dnatElements is the number of DNAT map elements, whichever of our DNAT
// maps (by address or for every address) holds them.
func (w *world) dnatElements() int {
	w.t.Helper()
	total := 0
	for name, n := range w.elementCounts() {
		if strings.HasPrefix(name, "port_dnat") {
			total += n
		}
	}
	return total
}
