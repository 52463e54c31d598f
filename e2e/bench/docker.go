package bench

import (
	"fmt"
	"strings"
)

// DockerRules is the iptables-restore text of the rules Docker's iptables
// backend holds for the plan: Docker 27's filter and nat layout (the one the
// issue describes: FORWARD → DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2 with a
// rule per bridge, a conntrack accept, DOCKER with an accept per port, nat
// PREROUTING/OUTPUT → DOCKER with a DNAT per port, MASQUERADE per subnet)
// plus Docker 28's raw "DROP DIRECT ACCESS" rule per container.
//
// Rule order follows Docker's: a new network's FORWARD, isolation, RETURN
// and MASQUERADE rules are inserted at the top (so the last network, the
// measured one, comes first), while per-port ACCEPT and DNAT rules and the
// raw rules are appended (so the measured, last-published port comes last).
func DockerRules(p *Plan) string {
	var b strings.Builder
	writeRawTable(&b, p)
	writeNATTable(&b, p)
	writeFilterTable(&b, p)
	return b.String()
}

// EmptyDockerRules empties the three tables DockerRules fills (restoring it
// flushes them and deletes Docker's chains).
func EmptyDockerRules() string {
	return "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n" +
		"*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n" +
		"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
}

// DockerRuleCount is the number of rules DockerRules writes.
func DockerRuleCount(p *Plan) int {
	return strings.Count(DockerRules(p), "\n-A ")
}

func writeRawTable(b *strings.Builder, p *Plan) {
	b.WriteString("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for _, ep := range p.Endpoints {
		fmt.Fprintf(b, "-A PREROUTING -d %s/32 ! -i %s -j DROP\n", ep.Addr, p.Networks[ep.Network].Bridge)
	}
	b.WriteString("COMMIT\n")
}

func writeNATTable(b *strings.Builder, p *Plan) {
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n")
	b.WriteString("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n")
	b.WriteString("-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n")
	for i := len(p.Networks) - 1; i >= 0; i-- {
		n := p.Networks[i]
		fmt.Fprintf(b, "-A POSTROUTING -s %s ! -o %s -j MASQUERADE\n", n.Subnet, n.Bridge)
	}
	for i := len(p.Networks) - 1; i >= 0; i-- {
		fmt.Fprintf(b, "-A DOCKER -i %s -j RETURN\n", p.Networks[i].Bridge)
	}
	for _, ep := range p.Endpoints {
		for _, port := range ep.Ports {
			fmt.Fprintf(b, "-A DOCKER %s\n", dnatRule(p, ep, port))
		}
	}
	b.WriteString("COMMIT\n")
}

func writeFilterTable(b *strings.Builder, p *Plan) {
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
		":DOCKER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n")
	b.WriteString("-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n")
	for i := len(p.Networks) - 1; i >= 0; i-- {
		br := p.Networks[i].Bridge
		fmt.Fprintf(b, "-A FORWARD -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", br)
		fmt.Fprintf(b, "-A FORWARD -o %s -j DOCKER\n", br)
		fmt.Fprintf(b, "-A FORWARD -i %s ! -o %s -j ACCEPT\n", br, br)
		fmt.Fprintf(b, "-A FORWARD -i %s -o %s -j ACCEPT\n", br, br)
	}
	for _, ep := range p.Endpoints {
		for _, port := range ep.Ports {
			fmt.Fprintf(b, "-A DOCKER %s\n", acceptRule(p, ep, port))
		}
	}
	for i := len(p.Networks) - 1; i >= 0; i-- {
		br := p.Networks[i].Bridge
		fmt.Fprintf(b, "-A DOCKER-ISOLATION-STAGE-1 -i %s ! -o %s -j DOCKER-ISOLATION-STAGE-2\n", br, br)
	}
	b.WriteString("-A DOCKER-ISOLATION-STAGE-1 -j RETURN\n")
	for i := len(p.Networks) - 1; i >= 0; i-- {
		fmt.Fprintf(b, "-A DOCKER-ISOLATION-STAGE-2 -o %s -j DROP\n", p.Networks[i].Bridge)
	}
	b.WriteString("-A DOCKER-ISOLATION-STAGE-2 -j RETURN\n-A DOCKER-USER -j RETURN\nCOMMIT\n")
}

// dnatRule is the nat DOCKER rule for one published port, without "-A DOCKER".
func dnatRule(p *Plan, ep PlanEndpoint, port PlanPort) string {
	return fmt.Sprintf("! -i %s -p %s -m %s --dport %d -j DNAT --to-destination %s:%d",
		p.Networks[ep.Network].Bridge, port.Proto, port.Proto, port.HostPort, ep.Addr, port.ContainerPort)
}

// acceptRule is the filter DOCKER rule for one published port.
func acceptRule(p *Plan, ep PlanEndpoint, port PlanPort) string {
	br := p.Networks[ep.Network].Bridge
	return fmt.Sprintf("-d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT",
		ep.Addr, br, br, port.Proto, port.Proto, port.ContainerPort)
}

// DockerPublishSteps are the iptables invocations Docker's iptables backend
// makes to publish one more TCP port hostPort → ep:80: for each of its two
// rules a check (-C, which fails) and an append (-A). Undo deletes both
// rules again. bin is iptables-legacy or iptables-nft.
func DockerPublishSteps(bin string, p *Plan, ep PlanEndpoint, hostPort uint16) (do, undo [][]string) {
	port := PlanPort{Proto: "tcp", HostPort: hostPort, ContainerPort: ServerTCPPort}
	rules := []struct{ table, rule string }{
		{"nat", dnatRule(p, ep, port)},
		{"filter", acceptRule(p, ep, port)},
	}
	for _, r := range rules {
		args := strings.Fields(r.rule)
		for _, verb := range []string{"-C", "-A"} {
			do = append(do, append([]string{bin, "-w", "-t", r.table, verb, "DOCKER"}, args...))
		}
		undo = append(undo, append([]string{bin, "-w", "-t", r.table, "-D", "DOCKER"}, args...))
	}
	return do, undo
}
