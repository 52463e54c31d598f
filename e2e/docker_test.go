package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/e2e/echo"
)

// TestDockerDriver runs a real dockerd (Debian's docker.io, 20.10) with
// `nftbridge daemon` as its network driver, in a namespace of its own:
// Docker networks become nftbridge networks, `docker run -p` publishes
// ports, isolation and masquerade hold, a killed daemon loses nothing, and
// when everything is removed the ruleset is what it was. Neither Docker nor
// nftbridge writes a single iptables rule.
func TestDockerDriver(t *testing.T) {
	if testing.Short() && !inCI() {
		t.Skip("starts dockerd: not in -short mode")
	}
	start := time.Now()
	d := newDockerWorld(t)
	t.Logf("dockerd and the nftbridge daemon up in %v", time.Since(start).Round(time.Millisecond))
	baseline := d.nft("list", "ruleset")

	bridge1 := "nb" + d.id + "d1"
	n1 := d.mustDocker("network", "create", "-d", "nftbridge", "--subnet", "172.30.1.0/24",
		"--gateway", "172.30.1.254", "-o", "com.docker.network.bridge.name="+bridge1, "n1")
	n2 := d.mustDocker("network", "create", "-d", "nftbridge", "n2") // Docker's IPAM picks
	bridge2 := d.checkNetworks(t, map[string]string{n1: bridge1, n2: ""})
	d.checkRefusals(t)

	d.mustDocker("run", "-d", "--name", "srv", "--network", "n1", "-p", "8080:80", "-p", "5353:53/udp",
		dockerImage, "/dockerecho", "serve", "-tcp", "80,81", "-udp", "53")
	d.mustDocker("run", "-d", "--name", "cli1", "--network", "n1", "--ip", "172.30.1.10", dockerImage, "/dockerecho", "serve")
	d.mustDocker("run", "-d", "--name", "cli2", "--network", "n2", dockerImage, "/dockerecho", "serve")
	srvIP := d.containerIP("srv", "n1")
	d.checkFlows(t, srvIP)

	d.checkConcurrent(t)
	d.checkDaemonRestart(t)
	srv2IP := d.containerIP("srv2", "n2")
	d.mustDocker("rm", "-f", "srv2")
	table := d.nft("list", "table", "ip", "nftbridge")
	for _, gone := range []string{srv2IP + " ", " 9090 "} {
		if strings.Contains(table, gone) {
			t.Errorf("after docker rm -f srv2, table still has %q:\n%s", gone, table)
		}
	}

	d.checkDockerdCrash(t)
	d.mustDocker("rm", "-f", "srv", "cli1", "cli2")
	d.mustDocker("network", "rm", "n1", "n2")
	d.checkAllGone(t, baseline, bridge1, bridge2)
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

// dockerNetwork is the part of `nftbridge network ls --format json` read here.
type dockerNetwork struct {
	Name, ID, Bridge, Subnet, Gateway string
}

// checkNetworks: every Docker network (ID → wanted bridge, "" for the
// default) is in nftbridge's store, named after its ID, with its bridge up.
// It returns the last default bridge name.
func (d *dockerWorld) checkNetworks(t *testing.T, want map[string]string) string {
	t.Helper()
	var list []dockerNetwork
	if err := json.Unmarshal([]byte(d.mustNB("network", "ls", "--format", "json")), &list); err != nil {
		t.Fatalf("network ls --format json: %v", err)
	}
	byID := map[string]dockerNetwork{}
	for _, n := range list {
		byID[n.ID] = n
	}
	var defaultBridge string
	for id, bridge := range want {
		n, ok := byID[id]
		if !ok {
			t.Fatalf("Docker network %s is not in `nftbridge network ls`: %+v", id[:12], list)
		}
		if n.Name != "docker-"+id[:12] {
			t.Errorf("network %s is named %q, want docker-%s", id[:12], n.Name, id[:12])
		}
		if bridge == "" {
			bridge, defaultBridge = "nb-"+id[:12], n.Bridge
		}
		if n.Bridge != bridge {
			t.Errorf("network %s has bridge %q, want %q", id[:12], n.Bridge, bridge)
		}
		d.must(ipIn(d.host, "link", "show", n.Bridge))
		inspect := d.mustDocker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", id)
		if got := n.Subnet + " " + n.Gateway; got != inspect {
			t.Errorf("network %s: nftbridge has %q, Docker %q", id[:12], got, inspect)
		}
	}
	return defaultBridge
}

// checkRefusals: options nftbridge cannot honour fail with an error naming
// them, and leave the ruleset, the store and the links exactly as they were.
func (d *dockerWorld) checkRefusals(t *testing.T) {
	t.Helper()
	before := d.snapshot()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "-d", "nftbridge", "-o", "com.docker.network.bridge.inhibit_ipv4=true", "bad1"}, "com.docker.network.bridge.inhibit_ipv4"},
		{[]string{"network", "create", "-d", "nftbridge", "-o", "color=blue", "bad2"}, `"color"`},
		{[]string{"network", "create", "-d", "nftbridge", "--ipv6", "--subnet", "fd00:5::/64", "bad3"}, "com.docker.network.enable_ipv6"},
		{[]string{"network", "create", "-d", "nftbridge", "-o", "com.docker.network.driver.mtu=big", "bad4"}, "com.docker.network.driver.mtu"},
		{[]string{"run", "--name", "bad5", "--network", "n1", "-p", "7070:70/sctp", dockerImage, "/dockerecho", "serve"}, "sctp"},
	} {
		r := d.dockerCmd(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %s: want a failure naming %s, got %v", strings.Join(c.args, " "), c.want, r)
		}
	}
	d.dockerCmd("rm", "-f", "bad5") // the container was created, never started
	before.diff(t, d.snapshot())
}

// checkFlows: the published ports answer from outside with the client's own
// address; an unpublished port does not, nor does the container directly;
// n1 reaches the server, n2 does not; outbound traffic is masqueraded.
func (d *dockerWorld) checkFlows(t *testing.T, srvIP string) {
	t.Helper()
	d.expectPeer(t, d.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	d.expectPeer(t, d.outside, "udp", hostPort(hostAddr, 5353), outsideAddr)
	d.expectBlocked(t, d.outside, "tcp", hostPort(hostAddr, 8081), echo.Refused)
	d.expectBlocked(t, d.outside, "tcp", hostPort(srvIP, 81), echo.Timeout)
	d.expectBlocked(t, d.outside, "tcp", hostPort(srvIP, 80), echo.Timeout)

	if ports := d.mustNB("port", "ls"); !strings.Contains(ports, "0.0.0.0:8080->80/tcp") || !strings.Contains(ports, srvIP+":53/udp") {
		t.Errorf("nftbridge port ls does not show srv's ports:\n%s", ports)
	}
	d.expectConnected(t, d.host, "tcp", "127.0.0.1:8080") // the host itself, through nat_output
	cli1IP := d.containerIP("cli1", "n1")
	if cli1IP != "172.30.1.10" {
		t.Errorf("cli1 got %s, want the --ip 172.30.1.10 Docker was asked for", cli1IP)
	}
	if outcome, _ := d.probeFrom("cli1", "tcp", hostPort(hostAddr, 8080), attemptTimeout); outcome != echo.Connected {
		t.Errorf("cli1 → its network's published port %s:8080 (hairpin): %s", hostAddr, outcome)
	}
	if outcome, peer := d.probeFrom("cli1", "tcp", hostPort(srvIP, 80), attemptTimeout); outcome != echo.Connected || addrOf(peer) != cli1IP {
		t.Errorf("cli1 (n1) → srv %s:80: %s, server saw %q; want connected from %s", srvIP, outcome, peer, cli1IP)
	}
	if outcome, _ := d.probeFrom("cli2", "tcp", hostPort(srvIP, 80), blockedTimeout); outcome != echo.Timeout {
		t.Errorf("cli2 (n2) → srv %s:80: %s; want timeout (networks are isolated)", srvIP, outcome)
	}
	for _, cli := range []string{"cli1", "cli2"} {
		outcome, peer := d.probeFrom(cli, "tcp", hostPort(outsideAddr, outsideTCP), attemptTimeout)
		if outcome != echo.Connected || addrOf(peer) != hostAddr {
			t.Errorf("%s → outside: %s, outside saw %q; want connected and masqueraded to %s", cli, outcome, peer, hostAddr)
		}
	}
}

// checkConcurrent: Docker starts containers in parallel (concurrent plugin
// requests) while the CLI creates and removes a network of its own; every
// container gets its port, each picked host port once, and the CLI's work
// lands beside Docker's.
func (d *dockerWorld) checkConcurrent(t *testing.T) {
	t.Helper()
	const containers = 6
	var wg sync.WaitGroup
	results := make([]cmdResult, containers+1)
	for i := range containers {
		wg.Go(func() {
			results[i] = d.dockerCmd("run", "-d", "--name", fmt.Sprintf("par%d", i), "--network", "n2", "-p", "80",
				dockerImage, "/dockerecho", "serve", "-tcp", "80")
		})
	}
	wg.Go(func() {
		if r := d.nb("network", "create", "--subnet", "10.77.0.0/24", "cli-net"); r.code != 0 {
			results[containers] = r
			return
		}
		results[containers] = d.nb("network", "rm", "cli-net")
	})
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("concurrent: %v", r)
		}
	}
	picked := map[string]string{}
	for _, row := range d.portRows() {
		if other, ok := picked[row.Binding]; ok {
			t.Errorf("host port %s published twice: %s and %s", row.Binding, other, row.Endpoint)
		}
		picked[row.Binding] = row.Endpoint
	}
	if len(picked) != 2+containers {
		t.Errorf("port ls has %d bindings, want %d: %v", len(picked), 2+containers, picked)
	}
	for i := range containers {
		d.mustDocker("rm", "-f", fmt.Sprintf("par%d", i))
	}
	if rows := d.portRows(); len(rows) != 2 {
		t.Errorf("after removing the parallel containers, port ls has %d bindings, want srv's 2", len(rows))
	}
}

func addrOf(addrPort string) string {
	ap, err := netip.ParseAddrPort(addrPort)
	if err != nil {
		return addrPort
	}
	return ap.Addr().String()
}

// checkDaemonRestart: the daemon is killed with SIGKILL and restarted while
// a published port is probed without pause: the kernel keeps forwarding, so
// no probe fails. After the restart a new `docker run -p` works.
func (d *dockerWorld) checkDaemonRestart(t *testing.T) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			res := probe(d.outside, "tcp", hostPort(hostAddr, 8080), attemptTimeout)
			if res.Outcome == echo.Connected {
				ok = append(ok, res.String())
			} else {
				failed = append(failed, res.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	d.daemon.stop(syscall.SIGKILL, 5*time.Second)
	downSince := time.Now()
	time.Sleep(time.Second) // down: nothing serves Docker, the kernel forwards
	d.startDaemon()
	down := time.Since(downSince)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("daemon down for %v: %d probes connected, %d failed", down.Round(time.Millisecond), len(ok), len(failed))
	if len(failed) > 0 || len(ok) < 5 {
		t.Errorf("published port while the daemon was down: %d connected, failures: %v", len(ok), failed)
	}
	d.mustDocker("run", "-d", "--name", "srv2", "--network", "n2", "-p", "9090:80", dockerImage, "/dockerecho", "serve", "-tcp", "80")
	d.expectPeer(t, d.outside, "tcp", hostPort(hostAddr, 9090), outsideAddr)
	d.expectPeer(t, d.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
}

// checkDockerdCrash: dockerd is killed with its containers running and
// restarted. It forgets their endpoints without telling the driver (it
// cleans up before activating the plugin), then hands the same addresses
// and ports out again on `docker start`: the driver drops the stale records
// instead of refusing, and the published port answers again.
func (d *dockerWorld) checkDockerdCrash(t *testing.T) {
	t.Helper()
	d.dockerd.stop(syscall.SIGKILL, 5*time.Second)
	if err := os.Remove(filepath.Join(d.dir, "docker.pid")); err != nil {
		t.Fatal(err)
	}
	// Its containerd dies with it, but a new dockerd would reuse it (and
	// time out) if it found it not yet reaped.
	d.waitGone(filepath.Join(d.dir, "exec", "containerd", "containerd.pid"))
	d.startDockerd()
	d.mustDocker("start", "srv", "cli1", "cli2")
	d.expectPeer(t, d.outside, "tcp", hostPort(hostAddr, 8080), outsideAddr)
	if outcome, peer := d.probeFrom("cli1", "tcp", hostPort(outsideAddr, outsideTCP), attemptTimeout); outcome != echo.Connected || addrOf(peer) != hostAddr {
		t.Errorf("cli1 → outside after dockerd restart: %s, outside saw %q", outcome, peer)
	}
	addrs := map[string]string{}
	for name, ep := range d.endpoints() {
		if other, ok := addrs[ep.Addr]; ok {
			t.Errorf("endpoints %s and %s both hold %s", other, name, ep.Addr)
		}
		addrs[ep.Addr] = name
	}
	if !strings.Contains(tail(d.daemon.log, 100), "removed stale endpoint") {
		t.Errorf("the daemon did not report removing the endpoints dockerd forgot")
	}
}

// checkAllGone: with every container and network removed, the bridges are
// gone, our table and the whole ruleset are what they were before the first
// network, only our table was added, and iptables holds nothing.
func (d *dockerWorld) checkAllGone(t *testing.T, baseline string, bridges ...string) {
	t.Helper()
	for _, br := range bridges {
		if r := ipIn(d.host, "link", "show", br); r.code == 0 {
			t.Errorf("bridge %s still exists after docker network rm:\n%s", br, r.stdout)
		}
	}
	if got := d.nft("list", "ruleset"); got != baseline {
		t.Errorf("ruleset after removing everything differs from before the first network:\n%s", lineDiff(baseline, got))
	}
	want := strings.TrimSpace(d.tablesBefore + "\ntable ip nftbridge")
	if got := strings.TrimSpace(d.nft("list", "tables")); got != want {
		t.Errorf("nft list tables: got\n%s\nwant only our table added to what was there before nftbridge started:\n%s", got, d.tablesBefore)
	}
	if rules := iptablesRules(d.must(nsExec(d.host, "iptables-save")).stdout); len(rules) > 0 {
		t.Errorf("Docker or nftbridge wrote iptables rules or chains:\n%s", strings.Join(rules, "\n"))
	}
	for _, name := range []string{"docker0", "docker_gwbridge"} {
		if r := ipIn(d.host, "link", "show", name); r.code == 0 {
			t.Errorf("Docker created %s: it must not need a bridge of its own", name)
		}
	}
	if r := d.nb("network", "ls", "--format", "json"); strings.TrimSpace(r.stdout) != "[]" && strings.TrimSpace(r.stdout) != "null" {
		t.Errorf("nftbridge network ls after docker network rm: %v", r)
	}
}

// iptablesRules returns the rules and non-built-in chains in iptables-save
// output: with iptables-legacy, empty built-in tables may show up anyway.
func iptablesRules(save string) []string {
	builtin := []string{"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
	var out []string
	for _, line := range strings.Split(save, "\n") {
		chain, isChain := strings.CutPrefix(line, ":")
		if strings.HasPrefix(line, "-A") || (isChain && !slices.Contains(builtin, strings.Fields(chain + " x")[0])) {
			out = append(out, line)
		}
	}
	return out
}

func TestIptablesRules(t *testing.T) {
	save := "# Generated by iptables-save\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\nCOMMIT\n"
	got := iptablesRules(save)
	if want := []string{":DOCKER-USER - [0:0]", "-A FORWARD -j DOCKER-USER"}; !slices.Equal(got, want) {
		t.Errorf("iptablesRules = %q, want %q", got, want)
	}
	if got := iptablesRules("*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"); len(got) != 0 {
		t.Errorf("empty built-in table: %q", got)
	}
}
