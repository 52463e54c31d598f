#!/usr/bin/env bash
# The nftbridge demo: builds a small world of network namespaces and shows
# Docker's bridge semantics enforced by nftbridge's one nftables table, with
# real packets. Everything happens inside namespaces this script creates and
# removes; the machine's own network is never touched.
#
#   outside (10.210.0.2) ── uplink ── host ns (10.210.0.1, nftbridge) ──┬─ frontend 172.30.0.0/24: web
#                                                                      └─ other    172.31.0.0/24: intruder
set -euo pipefail
NFTBRIDGE=$(realpath "${1:-bin/nftbridge}")
NBECHO=$(realpath "${2:-bin/nbecho}")
[[ $EUID -eq 0 ]] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

tag=nbdemo$$
HOST=$tag-host OUT=$tag-out WEB=$tag-web INTRUDER=$tag-intr
STATE=$(mktemp -d)
pids=()

cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for ns in $HOST $OUT $WEB $INTRUDER; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$STATE"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
nb() { echo "\$ nftbridge $*"; ip netns exec "$HOST" "$NFTBRIDGE" --state-dir "$STATE" "$@"; }
expect_ok() { # expect_ok NS PROTO ADDR: a flow that must work
	if out=$(ip netns exec "$1" "$NBECHO" dial "$2" "$3" -timeout 2s 2>&1); then
		printf '  \033[32mOK\033[0m      %-8s → %-20s %s\n' "${1#"$tag"-}" "$3/$2" "$out"
	else
		printf '  \033[31mFAILED\033[0m  %-8s → %-20s %s\n' "${1#"$tag"-}" "$3/$2" "$out"; exit 1
	fi
}
expect_blocked() { # expect_blocked NS PROTO ADDR: a flow that must not work
	if out=$(ip netns exec "$1" "$NBECHO" dial "$2" "$3" -timeout 1s 2>&1); then
		printf '  \033[31mLEAKED\033[0m  %-8s → %-20s %s\n' "${1#"$tag"-}" "$3/$2" "$out"; exit 1
	else
		printf '  \033[32mBLOCKED\033[0m %-8s → %-20s (%s)\n' "${1#"$tag"-}" "$3/$2" "${out##*: }"
	fi
}

step "Namespaces: a host, an outside client, two containers"
for ns in $HOST $OUT $WEB $INTRUDER; do ip netns add "$ns"; done
ip -n "$HOST" link set lo up
ip -n "$OUT" link set lo up
ip link add "$tag-u" netns "$HOST" type veth peer name uplink0 netns "$OUT"
ip -n "$HOST" link set "$tag-u" name uplink
ip -n "$HOST" addr add 10.210.0.1/24 dev uplink
ip -n "$HOST" link set uplink up
ip -n "$OUT" addr add 10.210.0.2/24 dev uplink0
ip -n "$OUT" link set uplink0 up
ip -n "$OUT" route add default via 10.210.0.1
ip netns exec "$OUT" "$NBECHO" serve -tcp 7000 & pids+=($!)

step "Networks, endpoints and a published port, through the CLI"
nb network create frontend --subnet 172.30.0.0/24 --bridge nb-frontend >/dev/null
nb network create other --subnet 172.31.0.0/24 --bridge nb-other >/dev/null
nb endpoint add --network frontend --name web "$WEB" >/dev/null
nb endpoint add --network other --name intruder "$INTRUDER" >/dev/null
nb port publish web -p 8080:80 -p 5353:53/udp -p 127.0.0.1:9090:80
ip netns exec "$WEB" "$NBECHO" serve -tcp 80 -udp 53 & pids+=($!)
sleep 0.3
nb network ls
nb endpoint ls
nb port ls

step "The whole firewall: one table, static rules, data in sets and maps"
nb ruleset

step "Real packets"
expect_ok "$OUT" tcp 10.210.0.1:8080       # published TCP: DNAT to web:80
expect_ok "$OUT" udp 10.210.0.1:5353       # published UDP
expect_blocked "$OUT" tcp 10.210.0.1:9090  # bound to 127.0.0.1 only
expect_ok "$HOST" tcp 127.0.0.1:9090       # ...which the host itself reaches
ip -n "$OUT" route add 172.30.0.0/24 via 10.210.0.1
expect_blocked "$OUT" tcp 172.30.0.2:80    # direct routing to a container: INBOUND-DROP
expect_blocked "$INTRUDER" tcp 172.30.0.2:80   # another network: ISOLATION
expect_ok "$INTRUDER" tcp 10.210.0.1:8080  # ...but its published port, via the host: hairpin
expect_ok "$WEB" tcp 10.210.0.2:7000       # outbound, masqueraded: the outside sees 10.210.0.1

step "The admin's hook: a drop in the user chain beats a published port"
echo "\$ nft add rule ip nftbridge user ip saddr 10.210.0.2 tcp dport 80 drop"
ip netns exec "$HOST" nft add rule ip nftbridge user ip saddr 10.210.0.2 tcp dport 80 drop
expect_blocked "$OUT" tcp 10.210.0.1:8080

step "nft flush ruleset wipes everything; nftbridge restore brings it back"
ip netns exec "$HOST" nft flush ruleset
ip -n "$HOST" link del nb-frontend
expect_blocked "$OUT" tcp 10.210.0.1:8080
nb restore
expect_ok "$OUT" tcp 10.210.0.1:8080
expect_blocked "$INTRUDER" tcp 172.30.0.2:80

step "Teardown leaves an empty table"
nb endpoint rm web
nb endpoint rm intruder
nb network rm frontend
nb network rm other
ip netns exec "$HOST" nft list table ip nftbridge | grep -c elements | sed 's/^/  sets with elements left: /' || true
printf '\n\033[1mdemo finished: every flow behaved as Docker'"'"'s bridge driver would.\033[0m\n'
