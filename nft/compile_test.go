package nft

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite nft/testdata/*.golden from Compile and Render")

// goldenCase is one point of the option matrix: a single network with one
// container and one published port.
type goldenCase struct {
	icc, internal, masq bool
	hostIP              string // "0.0.0.0" or an address the port is bound to
	proto               uint8
}

func (c goldenCase) name() string {
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	host := "any"
	if c.hostIP != "0.0.0.0" {
		host = c.hostIP
	}
	return fmt.Sprintf("icc-%s_internal-%s_masq-%s_hostip-%s_%s",
		onOff(c.icc), onOff(c.internal), onOff(c.masq), host, protoName(c.proto))
}

func (c goldenCase) desired() Desired {
	container := netip.MustParseAddr("172.18.0.2")
	return Desired{
		Networks: []Network{{Bridge: "br-test", Subnet: netip.MustParsePrefix("172.18.0.0/16"),
			ICC: c.icc, Internal: c.internal, Masquerade: c.masq}},
		Endpoints: []Endpoint{{Bridge: "br-test", Addr: container}},
		Ports: []Port{{Proto: c.proto, HostIP: netip.MustParseAddr(c.hostIP), HostPort: 8080,
			Addr: container, ContainerPort: 80}},
	}
}

// goldenMatrix enumerates the option knobs the way moby's TestNftabler
// does: icc × internal × masquerade × host IP × protocol.
func goldenMatrix() []goldenCase {
	var cases []goldenCase
	for _, icc := range []bool{false, true} {
		for _, internal := range []bool{false, true} {
			for _, masq := range []bool{false, true} {
				for _, hostIP := range []string{"0.0.0.0", "10.99.0.1"} {
					for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
						cases = append(cases, goldenCase{icc, internal, masq, hostIP, proto})
					}
				}
			}
		}
	}
	return cases
}

// TestGolden compiles every point of the option matrix and compares the
// rendered table with testdata/<case>.golden.
func TestGolden(t *testing.T) {
	for _, c := range goldenMatrix() {
		t.Run(c.name(), func(t *testing.T) {
			rs, err := Compile(c.desired())
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			checkGolden(t, c.name(), Render(rs))
		})
	}
}

// TestGoldenCleaned is the table with no networks: what teardown must
// leave behind.
func TestGoldenCleaned(t *testing.T) {
	rs, err := Compile(Desired{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if n := rs.ElementCount(); n != 0 {
		t.Errorf("cleaned ruleset has %d elements, want 0", n)
	}
	checkGolden(t, "cleaned", Render(rs))
}

// TestGoldenTraceWorld pins the ruleset the trace cases walk through.
func TestGoldenTraceWorld(t *testing.T) {
	checkGolden(t, "trace-world", Render(traceRuleset(t)))
}

// TestGoldenNoStrays fails on golden files no test writes any more.
func TestGoldenNoStrays(t *testing.T) {
	known := map[string]bool{"cleaned": true, "trace-world": true}
	for _, c := range goldenMatrix() {
		known[c.name()] = true
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".golden"); !known[name] {
			t.Errorf("%s: no test produces it; delete it", f)
		}
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./nft -run TestGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (regenerate with -update if the change is meant):\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first line where want and got part ways.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n\twant %q\n\tgot  %q", i+1, w, g)
		}
	}
	return "(no line differs)"
}

// scaledDesired is n networks with 5 containers each and ports published
// ports spread over those containers.
func scaledDesired(networks, ports int) Desired {
	var d Desired
	for n := range networks {
		bridge := fmt.Sprintf("br-%d", n)
		d.Networks = append(d.Networks, Network{Bridge: bridge,
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n / 256), byte(n % 256), 0}), 24),
			ICC:    n%2 == 0, Internal: n%7 == 0, Masquerade: n%3 != 0})
		for host := range 5 {
			d.Endpoints = append(d.Endpoints, Endpoint{Bridge: bridge,
				Addr: netip.AddrFrom4([4]byte{10, byte(n / 256), byte(n % 256), byte(2 + host)})})
		}
	}
	for p := range ports {
		proto := ProtoTCP
		if p%2 == 1 {
			proto = ProtoUDP
		}
		d.Ports = append(d.Ports, Port{Proto: proto, HostIP: netip.IPv4Unspecified(),
			HostPort: uint16(10000 + p), Addr: d.Endpoints[p%len(d.Endpoints)].Addr, ContainerPort: uint16(1 + p)})
	}
	return d
}

// TestCompileRuleCountIsConstant: networks and ports grow sets and maps,
// never chains. 200 networks with 5000 ports have exactly the rules of one
// network with one port.
func TestCompileRuleCountIsConstant(t *testing.T) {
	small, err := Compile(scaledDesired(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	big, err := Compile(scaledDesired(200, 5000))
	if err != nil {
		t.Fatal(err)
	}
	if small.RuleCount() != big.RuleCount() {
		t.Errorf("rules: %d for 1 network/1 port, %d for 200 networks/5000 ports", small.RuleCount(), big.RuleCount())
	}
	if RenderTerse(small) != RenderTerse(big) {
		t.Errorf("tables differ in more than their elements:\n%s", firstDiff(RenderTerse(small), RenderTerse(big)))
	}
	if got := big.Set(MapPortDNAT).Elements; len(got) != 5000 {
		t.Errorf("%s has %d elements, want 5000", MapPortDNAT, len(got))
	}
}

// TestCompileValidation: a bad input is refused with an error that names
// the bad value, and no ruleset.
func TestCompileValidation(t *testing.T) {
	ma, mp := netip.MustParseAddr, netip.MustParsePrefix
	subnet := mp("172.18.0.0/16")
	good := Network{Bridge: "br-a", Subnet: subnet}
	port := Port{Proto: ProtoTCP, HostIP: ma("0.0.0.0"), HostPort: 8080, Addr: ma("172.18.0.2"), ContainerPort: 80}
	withPort := func(edit func(*Port)) Desired {
		p := port
		edit(&p)
		return Desired{Networks: []Network{good}, Ports: []Port{p}}
	}
	tests := []struct {
		name    string
		desired Desired
		want    []string // every one must appear in the error
	}{
		{"empty bridge name", Desired{Networks: []Network{{Subnet: subnet}}}, []string{`""`, "1 to 15"}},
		{"bridge name too long", Desired{Networks: []Network{{Bridge: "br-0123456789abc", Subnet: subnet}}},
			[]string{`"br-0123456789abc"`, "1 to 15"}},
		{"bridge in two networks", Desired{Networks: []Network{good, {Bridge: "br-a", Subnet: mp("172.19.0.0/16")}}},
			[]string{`"br-a"`}},
		{"IPv6 subnet", Desired{Networks: []Network{{Bridge: "br-6", Subnet: mp("fd00::/64")}}},
			[]string{"fd00::/64", "IPv4"}},
		{"missing subnet", Desired{Networks: []Network{{Bridge: "br-x"}}}, []string{`"br-x"`, "subnet"}},
		{"endpoint on an unknown bridge", Desired{Networks: []Network{good},
			Endpoints: []Endpoint{{Bridge: "br-z", Addr: ma("172.18.0.2")}}}, []string{`"br-z"`, "172.18.0.2"}},
		{"IPv6 endpoint", Desired{Networks: []Network{good},
			Endpoints: []Endpoint{{Bridge: "br-a", Addr: ma("fd00::2")}}}, []string{"fd00::2", "IPv4"}},
		{"protocol neither tcp nor udp", withPort(func(p *Port) { p.Proto = 132 }), []string{"protocol 132", "tcp", "udp"}},
		{"IPv6 container address", withPort(func(p *Port) { p.Addr = ma("fd00::2") }), []string{"fd00::2", "IPv4"}},
		{"IPv6 host address", withPort(func(p *Port) { p.HostIP = ma("::1") }), []string{"::1", "IPv4"}},
		{"host port zero", withPort(func(p *Port) { p.HostPort = 0 }), []string{"0->80", "non-zero"}},
		{"container port zero", withPort(func(p *Port) { p.ContainerPort = 0 }), []string{"8080->0", "non-zero"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Compile(tc.desired)
			if err == nil {
				t.Fatalf("Compile accepted it:\n%s", Render(rs))
			}
			if rs != nil {
				t.Errorf("Compile returned a ruleset alongside its error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// TestCompileIsDeterministic: the order networks, endpoints and ports come
// in does not change a byte of the table.
func TestCompileIsDeterministic(t *testing.T) {
	d := traceDesired()
	// A second port onto a container port already published: the published
	// set holds it once whatever the order.
	extra := d.Ports[0]
	extra.HostPort = 8081
	d.Ports = append(d.Ports, extra)
	for _, base := range []Desired{d, scaledDesired(20, 300)} {
		want, err := Compile(base)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for round := range 20 {
			shuffled := Desired{Networks: slices.Clone(base.Networks),
				Endpoints: slices.Clone(base.Endpoints), Ports: slices.Clone(base.Ports)}
			rng.Shuffle(len(shuffled.Networks), func(i, j int) {
				shuffled.Networks[i], shuffled.Networks[j] = shuffled.Networks[j], shuffled.Networks[i]
			})
			rng.Shuffle(len(shuffled.Endpoints), func(i, j int) {
				shuffled.Endpoints[i], shuffled.Endpoints[j] = shuffled.Endpoints[j], shuffled.Endpoints[i]
			})
			rng.Shuffle(len(shuffled.Ports), func(i, j int) {
				shuffled.Ports[i], shuffled.Ports[j] = shuffled.Ports[j], shuffled.Ports[i]
			})
			got, err := Compile(shuffled)
			if err != nil {
				t.Fatal(err)
			}
			if Render(got) != Render(want) {
				t.Fatalf("round %d: shuffled input renders differently:\n%s", round, firstDiff(Render(want), Render(got)))
			}
		}
	}
}
