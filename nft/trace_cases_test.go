package nft

import "slices"

// traceCases are the packet walkthroughs: one per semantic the ruleset
// promises. Each names the packet, what happens to it, and the deciding
// rule's tag.
func traceCases() []traceCase {
	return slices.Concat(publishedPortCases(), internalLeakCases(), hostIPCases(), loopbackCases(), hairpinCases(),
		isolationCases(), outboundCases(), internalCases(), hostCases(), userHookCases())
}

// publishedPortCases: ports published on every host address, and what is not published.
func publishedPortCases() []traceCase {
	return []traceCase{
		{name: "outside → host:8080: DNAT to 172.18.0.2:80, accept [PUBLISHED]",
			pkt:  tcp("uplink", outside, hostIP+":8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", by: TagPublished, tags: tags(TagDNAT, TagToBridge, TagPublished)}},
		{name: "outside → host:5353/udp: DNAT to 172.18.0.2:53, accept [PUBLISHED]",
			pkt:  udp("uplink", outside, hostIP+":5353"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":53", by: TagPublished, tags: tags(TagDNAT, TagToBridge, TagPublished)}},
		{name: "outside → host:8080/udp: only tcp is published, delivered to the host",
			pkt:  udp("uplink", outside, hostIP+":8080"),
			want: want{verdict: "local"}},
		{name: "outside → host:22: unpublished, delivered to the host, not forwarded",
			pkt:  tcp("uplink", outside, hostIP+":22"),
			want: want{verdict: "local"}},
		{name: "outside → 172.18.0.2:80 routed directly, published but not DNATed: drop [INBOUND-DROP]",
			pkt:  tcp("uplink", outside, a1+":80"),
			want: want{verdict: "drop", oif: "br-a", by: TagInbound, tags: tags(TagToBridge, TagInbound)}},
		{name: "b1 → 172.18.0.2:80 routed directly from another network: drop [ISOLATION]",
			pkt:  tcp("br-b", b1, a1+":80"),
			want: want{verdict: "drop", oif: "br-a", by: TagIsolation, tags: tags(TagFromBridge, TagCrossBridge, TagIsolation)}},
		{name: "outside → 172.18.0.2:22 routed directly, unpublished: drop [INBOUND-DROP]",
			pkt:  tcp("uplink", outside, a1+":22"),
			want: want{verdict: "drop", oif: "br-a", by: TagInbound, tags: tags(TagToBridge, TagInbound)}},
		{name: "outside → host:8080, later packet: conntrack DNATs it, accept [ESTABLISHED]",
			pkt:  established(tcp("uplink", outside, hostIP+":8080"), a1+":80", true),
			want: want{verdict: "accept", oif: "br-a", by: TagEstablished, tags: tags(TagEstablished)}},
		{name: "outside → host:5353/udp, later packet, no reply yet: conntrack DNATs it, accept [CONFIRMED]",
			pkt:  unreplied(udp("uplink", outside, hostIP+":5353"), a1+":53", true),
			want: want{verdict: "accept", oif: "br-a", by: TagConfirmed, tags: tags(TagConfirmed)}},
	}
}

// hostIPCases: a port bound to one host address answers on that address only.
func hostIPCases() []traceCase {
	return []traceCase{
		{name: "outside → 10.99.0.1:7070: DNAT to 172.19.0.2:70, accept [PUBLISHED]",
			pkt:  tcp("uplink", outside, hostIP+":7070"),
			want: want{verdict: "accept", oif: "br-b", dnat: b1 + ":70", by: TagPublished, tags: tags(TagDNATIP, TagToBridge, TagPublished)}},
		{name: "outside → 172.18.0.1:7070: bound to 10.99.0.1 only, delivered to the host",
			pkt:  tcp("uplink", outside, "172.18.0.1:7070"),
			want: want{verdict: "local"}},
	}
}

// loopbackCases: a port bound to 127.0.0.1 is for the host alone.
func loopbackCases() []traceCase {
	return []traceCase{
		{name: "host → 127.0.0.1:9090: DNAT to 172.18.0.2:90, masquerade [LOOPBACK-MASQ]",
			pkt:  tcp("", "127.0.0.1", "127.0.0.1:9090"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":90", masq: true, tags: tags(TagDNATIP, TagLoopbackMasq)}},
		{name: "outside → 10.99.0.1:9090: bound to 127.0.0.1 only, delivered to the host",
			pkt:  tcp("uplink", outside, hostIP+":9090"),
			want: want{verdict: "local"}},
		{name: "a1 → 127.0.0.1:9090: a container may not reach the host's loopback, drop [LOOPBACK-SPOOF]",
			pkt:  tcp("br-a", a1, "127.0.0.1:9090"),
			want: want{verdict: "drop", by: TagLoopbackSpoof, tags: tags(TagLoopbackSpoof)}},
		{name: "a1 → 127.0.0.1:22 udp: not a published port either, drop [LOOPBACK-SPOOF]",
			pkt:  udp("br-a", a1, "127.0.0.1:22"),
			want: want{verdict: "drop", by: TagLoopbackSpoof, tags: tags(TagLoopbackSpoof)}},
		{name: "a1 → 127.0.0.1 reply of a host → 127.0.0.1:9090 connection, de-NATed: delivered to the host",
			pkt:  established(tcp("br-a", a1, "172.18.0.1:40000"), "127.0.0.1:40000", false),
			want: want{verdict: "local"}},
		{name: "outside → 127.0.0.1:9090 sent to our MAC by a neighbour: never DNATed to the loopback-bound port, drop [LOOPBACK-SPOOF]",
			pkt:  tcp("uplink", outside, "127.0.0.1:9090"),
			want: want{verdict: "drop", by: TagLoopbackSpoof, tags: tags(TagLoopbackSpoof)}},
		{name: "a1 → 127.0.0.1:9090, a later packet conntrack calls invalid: drop on input [LOOPBACK-INPUT]",
			pkt:  func() Packet { p := tcp("br-a", a1, "127.0.0.1:9090"); p.CtState = "invalid"; return p }(),
			want: want{verdict: "drop", by: TagLoopbackInput, tags: tags(TagLoopbackInput)}},
	}
}

// hairpinCases: containers reaching published ports through a host address.
func hairpinCases() []traceCase {
	return []traceCase{
		{name: "a1 → 10.99.0.1:8080: hairpin back to a1, same bridge, accept [ICC], masquerade [HAIRPIN]",
			pkt: tcp("br-a", a1, hostIP+":8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", masq: true, by: TagICC,
				tags: tags(TagDNAT, TagFromBridge, TagCrossBridge, TagICC, TagHairpin)}},
		{name: "a2 → 10.99.0.1:8080: hairpin to a1 on the same bridge, accept [ICC], masquerade [HAIRPIN]",
			pkt: tcp("br-a", a2, hostIP+":8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", masq: true, by: TagICC,
				tags: tags(TagDNAT, TagFromBridge, TagCrossBridge, TagICC, TagHairpin)}},
		{name: "b1 → 10.99.0.1:8080: cross-network hairpin to a1, accept [PUBLISHED], no masquerade",
			pkt:  tcp("br-b", b1, hostIP+":8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", by: TagPublished, tags: tags(TagDNAT, TagFromBridge, TagCrossBridge, TagPublished)}},
		{name: "c2 → 10.99.0.1:6060: hairpin to c1 on a network with ICC off, a published port is open, accept [PUBLISHED], masquerade [HAIRPIN]",
			pkt: tcp("br-c", c2, hostIP+":6060"),
			want: want{verdict: "accept", oif: "br-c", dnat: c1 + ":60", masq: true, by: TagPublished,
				tags: tags(TagDNAT, TagFromBridge, TagCrossBridge, TagICC, TagPublished, TagHairpin)}},
		{name: "c2 → c1:60 routed directly on a network with ICC off: published but not DNATed, drop [ICC-OFF]",
			pkt:  tcp("br-c", c2, c1+":60"),
			want: want{verdict: "drop", oif: "br-c", by: TagICCOff, tags: tags(TagFromBridge, TagCrossBridge, TagICC, TagICCOff)}},
		{name: "a1 → 10.99.0.1:6060: a published port of an ICC-off network is open to other networks, accept [PUBLISHED]",
			pkt:  tcp("br-a", a1, hostIP+":6060"),
			want: want{verdict: "accept", oif: "br-c", dnat: c1 + ":60", by: TagPublished, tags: tags(TagDNAT, TagFromBridge, TagCrossBridge, TagPublished)}},
		{name: "c2 → its gateway 172.20.0.1:8080: a published port is open to other networks, accept [PUBLISHED]",
			pkt:  tcp("br-c", c2, "172.20.0.1:8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", by: TagPublished, tags: tags(TagDNAT, TagFromBridge, TagCrossBridge, TagPublished)}},
	}
}

// isolationCases: networks are isolated; ICC decides within one.
func isolationCases() []traceCase {
	return []traceCase{
		{name: "a1 → b1: networks are isolated, drop [ISOLATION]",
			pkt:  tcp("br-a", a1, b1+":70"),
			want: want{verdict: "drop", oif: "br-b", by: TagIsolation, tags: tags(TagFromBridge, TagCrossBridge, TagIsolation)}},
		{name: "b1 → a1: isolation holds both ways, drop [ISOLATION]",
			pkt:  tcp("br-b", b1, a1+":80"),
			want: want{verdict: "drop", oif: "br-a", by: TagIsolation, tags: tags(TagFromBridge, TagCrossBridge, TagIsolation)}},
		{name: "a1 → i1: an internal network is isolated too, drop [INTERNAL-IN]",
			pkt:  tcp("br-a", a1, i1+":80"),
			want: want{verdict: "drop", oif: "br-i", by: TagInternalIn, tags: tags(TagFromBridge, TagCrossBridge, TagInternalIn)}},
		{name: "a1 → a2: ICC on, accept [ICC]",
			pkt:  tcp("br-a", a1, a2+":80"),
			want: want{verdict: "accept", oif: "br-a", by: TagICC, tags: tags(TagFromBridge, TagCrossBridge, TagICC)}},
		{name: "c1 → c2: ICC off, drop [ICC-OFF]",
			pkt:  tcp("br-c", c1, c2+":80"),
			want: want{verdict: "drop", oif: "br-c", by: TagICCOff, tags: tags(TagFromBridge, TagCrossBridge, TagICC, TagICCOff)}},
	}
}

// outboundCases: containers reaching out, and the replies coming back.
func outboundCases() []traceCase {
	return []traceCase{
		{name: "a1 → uplink: accept [OUTBOUND], masquerade [MASQUERADE]",
			pkt:  tcp("br-a", a1, "198.51.100.1:443"),
			want: want{verdict: "accept", oif: "uplink", masq: true, by: TagOutbound, tags: tags(TagFromBridge, TagOutbound, TagMasquerade)}},
		{name: "m1 → uplink: masquerade off, accept [OUTBOUND] as is",
			pkt:  tcp("br-m", m1, "198.51.100.1:443"),
			want: want{verdict: "accept", oif: "uplink", by: TagOutbound, tags: tags(TagFromBridge, TagOutbound)}},
		{name: "uplink → a1 reply, de-masqueraded by conntrack: accept [ESTABLISHED]",
			pkt:  established(tcp("uplink", "198.51.100.1", hostIP+":40000"), a1+":40000", false),
			want: want{verdict: "accept", oif: "br-a", by: TagEstablished, tags: tags(TagEstablished)}},
		{name: "uplink → m1 reply, never NATed: accept [ESTABLISHED]",
			pkt:  established(tcp("uplink", "198.51.100.1", m1+":40000"), "", false),
			want: want{verdict: "accept", oif: "br-m", by: TagEstablished, tags: tags(TagEstablished)}},
		{name: "a1 → outside reply on a published port: accept [ESTABLISHED]",
			pkt:  established(tcp("br-a", a1, outside+":40000"), "", true),
			want: want{verdict: "accept", oif: "uplink", by: TagEstablished, tags: tags(TagEstablished)}},
		{name: "a1 → uplink/udp, later packet, no reply yet: accept [CONFIRMED]",
			pkt:  unreplied(udp("br-a", a1, "198.51.100.1:53"), "", false),
			want: want{verdict: "accept", oif: "uplink", by: TagConfirmed, tags: tags(TagConfirmed)}},
		{name: "c2 → c1, established: ICC off drops only new connections, accept [ESTABLISHED]",
			pkt:  established(tcp("br-c", c2, c1+":40000"), "", true),
			want: want{verdict: "accept", oif: "br-c", by: TagEstablished, tags: tags(TagEstablished)}},
	}
}

// internalCases: internal networks talk only among their members.
func internalCases() []traceCase {
	return []traceCase{
		{name: "i1 → uplink: internal, drop [INTERNAL-OUT]",
			pkt:  tcp("br-i", i1, "198.51.100.1:443"),
			want: want{verdict: "drop", oif: "uplink", by: TagInternalOut, tags: tags(TagFromBridge, TagInternalOut)}},
		{name: "uplink → i1: internal, drop [INTERNAL-IN]",
			pkt:  tcp("uplink", outside, i1+":80"),
			want: want{verdict: "drop", oif: "br-i", by: TagInternalIn, tags: tags(TagToBridge, TagInternalIn)}},
		{name: "i1 → i2: members of an internal network talk, accept [ICC]",
			pkt:  tcp("br-i", i1, i2+":80"),
			want: want{verdict: "accept", oif: "br-i", by: TagICC, tags: tags(TagFromBridge, TagICC)}},
	}
}

// hostCases: packets the host sends, and packets sent to it.
func hostCases() []traceCase {
	return []traceCase{
		{name: "uplink → uplink: neither side is a bridge of ours, the policy accepts",
			pkt:  tcp("uplink", outside, "10.99.0.7:22"),
			want: want{verdict: "accept", oif: "uplink"}},
		{name: "host → a1:80: locally generated, no forward hook, accept",
			pkt:  tcp("", hostIP, a1+":80"),
			want: want{verdict: "accept", oif: "br-a"}},
		{name: "host → 10.99.0.1:8080: DNAT to 172.18.0.2:80 in nat_output, accept",
			pkt:  tcp("", hostIP, hostIP+":8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", tags: tags(TagDNAT)}},
		{name: "a1 → its gateway 172.18.0.1:53: delivered to the host",
			pkt:  udp("br-a", a1, "172.18.0.1:53"),
			want: want{verdict: "local"}},
	}
}

// userHookCases: the admin's user chain runs first in forward.
func userHookCases() []traceCase {
	drop, accept := Verdict{Kind: Drop}, Verdict{Kind: Accept}
	return []traceCase{
		{name: "user drop: outside → host:8080 dropped by the admin [ADMIN-DROP]",
			user: []Rule{userRule("ADMIN-DROP", daddrIn(a1+"/32"), ProtoIn{Protos: []uint8{ProtoTCP}}, drop)},
			pkt:  tcp("uplink", outside, hostIP+":8080"),
			want: want{verdict: "drop", oif: "br-a", dnat: a1 + ":80", by: "ADMIN-DROP", tags: tags(TagDNAT, "ADMIN-DROP")}},
		{name: "user accept: a1 → b1 let through by the admin [ADMIN-ACCEPT], not masqueraded",
			user: []Rule{userRule("ADMIN-ACCEPT", saddrIn("172.18.0.0/16"), daddrIn("172.19.0.0/16"), accept)},
			pkt:  tcp("br-a", a1, b1+":70"),
			want: want{verdict: "accept", oif: "br-b", by: "ADMIN-ACCEPT", tags: tags("ADMIN-ACCEPT")}},
		{name: "user return: a1 → uplink returns to forward, accept [OUTBOUND]",
			user: []Rule{userRule("ADMIN-RETURN", saddrIn("172.18.0.0/16"), Verdict{Kind: Return}),
				userRule("ADMIN-DROP-ALL", drop)},
			pkt: tcp("br-a", a1, "198.51.100.1:443"),
			want: want{verdict: "accept", oif: "uplink", masq: true, by: TagOutbound,
				tags: tags("ADMIN-RETURN", TagFromBridge, TagOutbound, TagMasquerade)}},
		{name: "user return: outside → host:8080 is not returned, drop [ADMIN-DROP-ALL]",
			user: []Rule{userRule("ADMIN-RETURN", saddrIn("172.18.0.0/16"), Verdict{Kind: Return}),
				userRule("ADMIN-DROP-ALL", drop)},
			pkt:  tcp("uplink", outside, hostIP+":8080"),
			want: want{verdict: "drop", oif: "br-a", dnat: a1 + ":80", by: "ADMIN-DROP-ALL", tags: tags(TagDNAT, "ADMIN-DROP-ALL")}},
		{name: "user rule without a verdict: counted, forward goes on, accept [PUBLISHED]",
			user: []Rule{userRule("", daddrIn(a1+"/32"))},
			pkt:  tcp("uplink", outside, hostIP+":8080"),
			want: want{verdict: "accept", oif: "br-a", dnat: a1 + ":80", by: TagPublished,
				tags: tags(TagDNAT, "user#1", TagToBridge, TagPublished)}},
	}
}

// internalLeakCases: found by the e2e suite. An internal network reaches
// nothing outside its bridge, not even another network's published port.
func internalLeakCases() []traceCase {
	return []traceCase{
		{name: "i1 → 10.99.0.1:8080 (a1's published port): internal, drop [INTERNAL-OUT]",
			pkt:  tcp("br-i", i1, hostIP+":8080"),
			want: want{verdict: "drop", oif: "br-a", dnat: a1 + ":80", by: TagInternalOut, tags: tags(TagDNAT, TagFromBridge, TagInternalOut)}},
	}
}
