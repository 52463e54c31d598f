#!/usr/bin/env bash
# e2e/vm/run.sh — run the e2e suite inside a qemu VM whose kernel cannot load
# iptables: a stock, pinned Debian kernel, a minimal initramfs without any
# legacy x_tables module, and those modules blacklisted on the command line.
#
# Usage:
#   e2e/vm/run.sh [options] [-- test args]
#
#   --test-bin PATH     test binary to run in the guest (a static `go test -c`
#                       binary). Default: build ./e2e and ./cmd/nftbridge from
#                       this repository with CGO_ENABLED=0.
#   --extra-bin PATH    also install PATH as /usr/local/bin/<basename> in the
#                       guest (repeatable). With the default build, nftbridge is
#                       added this way.
#   --testdata DIR      copy DIR to /e2e/testdata in the guest (the test's
#                       working directory is /e2e). Default: e2e/testdata of
#                       this repository when the default build is used and it
#                       exists.
#   --env K=V           extra environment variable for the test (repeatable).
#   --timeout DUR       wall-clock limit for the whole guest run, in timeout(1)
#                       syntax (default 25m, or $NFTBRIDGE_VM_TIMEOUT).
#   --keep              keep the work directory (binaries, initramfs, log).
#   -h, --help          this text.
#
# Everything after `--` is passed to the test binary, after the defaults
# `-test.v -test.timeout=20m` (Go's flag package lets a later flag win, so
# `-- -test.timeout=5m -test.run TestX` overrides them).
#
# Exit status: the test binary's own status, read from the guest's
# `NFTBRIDGE-VM-EXIT=<n>` console line. Without that line the run failed:
# 124 = the guest did not finish in time (hang), 125 = the guest kernel
# panicked or the guest died / could not start the suite, 3 = harness error
# (build, download, bad usage; 3 because a Go test binary itself exits 1 or 2).
#
# Environment knobs (all optional):
#   NFTBRIDGE_VM_CACHE    kernel cache dir (default
#                         ${XDG_CACHE_HOME:-$HOME/.cache}/nftbridge-vm/<pkg>_<version>)
#   NFTBRIDGE_VM_TIMEOUT  as --timeout
#   NFTBRIDGE_VM_MEM      guest memory in MiB (default 2048)
#   NFTBRIDGE_VM_SMP      guest CPUs (default 2: a bare boot is ~1 s faster with
#                         1, but the e2e suite, whose tests run in parallel,
#                         took 56-82 s with 2 against 94-141 s with 1 here)
#   NFTBRIDGE_VM_ACCEL    qemu -accel value (default tcg,thread=multi; /dev/kvm
#                         refuses normal guests on our machines)
#   NFTBRIDGE_VM_BOOT     elf (default: boot the uncompressed vmlinux via PVH,
#                         skipping the slow in-guest xz decompression under TCG)
#                         or bzimage (boot Debian's vmlinuz as shipped)
#   NFTBRIDGE_VM_KERNEL_LOG=1  drop `quiet` from the kernel command line
#   NFTBRIDGE_VM_APPEND   extra kernel command line arguments
#   NFTBRIDGE_VM_WORK     work directory (default: a fresh mktemp -d; removed
#                         after a passing run unless --keep)
#
# See e2e/vm/README.md for what the guest contains.
set -euo pipefail

# ---------------------------------------------------------------------------
# The kernel. PINNED: a Debian mirror update must not silently change the
# kernel under test. bookworm's linux-image-amd64 depends on this package.
# To bump: `apt-get update && apt-cache depends linux-image-amd64` gives the
# ABI name, `apt-cache policy linux-image-<abi>` its version.
# NFTBRIDGE_VM_KERNEL_ABI/_VERSION try another kernel without editing (e.g.
# 6.12.117+deb12-amd64 / 6.12.117-1~deb12u1, also in bookworm-security).
# The pin is bookworm's own point-release kernel from the main archive, not
# bookworm-security's, which replaces its packages with every update.
KERNEL_ABI=${NFTBRIDGE_VM_KERNEL_ABI:-6.1.0-50-amd64}
KERNEL_VERSION=${NFTBRIDGE_VM_KERNEL_VERSION:-6.1.176-1}
KERNEL_PKG=linux-image-$KERNEL_ABI

# Modules the guest loads at boot, by name; their dependencies are resolved
# from the package's modules.dep. Names that are built into this kernel
# (modules.builtin) are skipped; any other name the kernel lacks is an error
# unless it ends in `?`. In 6.1 the set backends (hash, rbtree, bitmap,
# pipapo for concatenations with intervals), verdict maps, counters, lookups,
# payload/meta/cmp/immediate and the inet/ipv4/ipv6/arp/netdev families are
# all built into nf_tables.ko; everything else used by the ruleset in
# docs/DESIGN.md is listed here.
GUEST_MODULES=(
  # libcrc32c (needed by nf_tables, nf_nat, nf_conntrack) only soft-depends on
  # a crc32c implementation, which modules.dep does not list
  crc32c_generic
  # nftables core and the expressions the nftbridge ruleset uses
  nf_tables nfnetlink
  nft_chain_nat nft_nat nft_masq nft_redir
  nft_ct nft_fib nft_fib_ipv4 nft_fib_ipv6 nft_fib_inet
  nft_reject nft_reject_ipv4 nft_reject_ipv6 nft_reject_inet
  nft_limit nft_log nft_numgen nft_hash nft_quota nft_connlimit
  nft_objref?       # ?: optional; folded into nf_tables.ko since 6.2
  nft_meta_bridge   # the bridge family itself is part of nf_tables.ko in 6.1
  # conntrack / NAT (nf_conntrack_netlink: conntrack flush via netlink)
  nf_conntrack nf_conntrack_netlink nf_defrag_ipv4 nf_defrag_ipv6 nf_nat
  nf_reject_ipv4 nf_reject_ipv6 nf_log_syslog nfnetlink_log
  # links
  bridge stp llc br_netfilter veth dummy
  # netlink families a stock host autoloads on first use: xfrm_user for
  # NETLINK_XFRM (vishvananda/netlink's NewHandle opens it unless told which
  # families to use: "protocol not supported" without it), the *_diag ones
  # for NETLINK_SOCK_DIAG (ss -lnt)
  xfrm_user inet_diag tcp_diag udp_diag
)

# The legacy world the guest must not be able to load. No module of the
# kernel package whose name matches LEGACY_MODULE_RE may enter the initramfs.
LEGACY_MODULE_RE='^(x_tables|ip_tables|ip6_tables|arp_tables|ebtables|iptable_.*|ip6table_.*|arptable_.*|ebtable_.*|ipt_.*|ip6t_.*|arpt_.*|ebt_.*|xt_.*|nft_compat)$'
# Those matching BLACKLIST_MODULE_RE are also named in module_blacklist= on the
# kernel command line, so the kernel itself refuses them. Trade-off: the kernel
# takes at most 1024 bytes for that parameter ("string parameter too long"),
# and the ~130 legacy modules of 6.1 need ~1350, so the matches (xt_*, ipt_*,
# ip6t_*, arpt_*, ebt_*) are not listed by name; run.sh checks that each of
# them depends on x_tables (blacklisted), i.e. none of them can load either.
BLACKLIST_MODULE_RE='^(x_tables|ip_tables|ip6_tables|arp_tables|ebtables|iptable_.*|ip6table_.*|arptable_.*|ebtable_.*|nft_compat)$'

# Host tools copied into the guest with their shared libraries (busybox's ip
# cannot do veth peers or netns, and the guest needs a real nft and modprobe).
GUEST_TOOLS=(/usr/bin/dash /usr/sbin/ip /usr/sbin/bridge /usr/bin/ss /usr/sbin/nft /usr/bin/kmod)

DEFAULT_TEST_ARGS=(-test.v -test.timeout=20m)

# ---------------------------------------------------------------------------
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
T0=$SECONDS

say() { printf 'nftbridge-vm: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 3; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

TEST_BIN=""
EXTRA_BINS=()
TESTDATA=""
GUEST_ENV=()
TEST_ARGS=()
KEEP=0
TIMEOUT=${NFTBRIDGE_VM_TIMEOUT:-25m}
while [ $# -gt 0 ]; do
  case $1 in
    --test-bin) TEST_BIN=${2:?--test-bin needs a path}; shift 2 ;;
    --test-bin=*) TEST_BIN=${1#*=}; shift ;;
    --extra-bin) EXTRA_BINS+=("${2:?--extra-bin needs a path}"); shift 2 ;;
    --extra-bin=*) EXTRA_BINS+=("${1#*=}"); shift ;;
    --testdata) TESTDATA=${2:?--testdata needs a dir}; shift 2 ;;
    --testdata=*) TESTDATA=${1#*=}; shift ;;
    --env) GUEST_ENV+=("${2:?--env needs K=V}"); shift 2 ;;
    --env=*) GUEST_ENV+=("${1#*=}"); shift ;;
    --timeout) TIMEOUT=${2:?--timeout needs a duration}; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; TEST_ARGS=("$@"); break ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for kv in ${GUEST_ENV[@]+"${GUEST_ENV[@]}"}; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*=[^$'\n']*$ ]] || die "--env wants K=V on one line, got: $kv"
done
for a in ${TEST_ARGS[@]+"${TEST_ARGS[@]}"}; do
  [[ $a != *$'\n'* ]] || die "test arguments cannot contain newlines"
done

MEM=${NFTBRIDGE_VM_MEM:-2048}
SMP=${NFTBRIDGE_VM_SMP:-2}
ACCEL=${NFTBRIDGE_VM_ACCEL:-tcg,thread=multi}
BOOT=${NFTBRIDGE_VM_BOOT:-elf}
CACHE=${NFTBRIDGE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nftbridge-vm/${KERNEL_PKG}_$KERNEL_VERSION}

# ---------------------------------------------------------------------------
# Host packages: install only what is missing.
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
APT_UPDATED=0
# apt-get, waiting (up to 10 min) while another apt/dpkg holds its locks, as
# happens on a shared machine or right after boot.
apt_locked() {
  local i err
  err=$(mktemp)
  for i in $(seq 60); do
    if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=10 "$@" 2>"$err"; then rm -f "$err"; return 0; fi
    grep -q 'Could not get lock\|Unable to lock' "$err" || { cat "$err" >&2; rm -f "$err"; return 1; }
    [ "$i" -gt 1 ] || say "waiting for another apt-get to release its lock"
    sleep 10
  done
  cat "$err" >&2; rm -f "$err"; return 1
}
apt_update() {
  [ $APT_UPDATED -eq 1 ] && return 0
  say "apt-get update"
  apt_locked update -qq || die "apt-get update failed"
  APT_UPDATED=1
}

is_static() { # an ELF with no program interpreter
  ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}

ensure_host_tools() {
  local -A need=()
  command -v qemu-system-x86_64 >/dev/null || need[qemu-system-x86]=1
  # The guest's busybox is static so that its applets need no libraries (nor
  # NSS) in the guest. Debian's busybox-static installs /bin/busybox.
  if ! { [ -x /bin/busybox ] && is_static /bin/busybox; }; then need[busybox-static]=1; fi
  command -v cpio >/dev/null || need[cpio]=1
  command -v depmod >/dev/null || [ -x /sbin/depmod ] || need[kmod]=1
  [ -x /usr/bin/kmod ] || need[kmod]=1
  command -v xz >/dev/null || need[xz-utils]=1
  command -v readelf >/dev/null || need[binutils]=1
  command -v timeout >/dev/null || need[coreutils]=1
  [ -x /usr/sbin/nft ] || need[nftables]=1
  [ -x /usr/bin/dash ] || need[dash]=1
  [ -x /usr/sbin/ip ] && [ -x /usr/sbin/bridge ] && [ -x /usr/bin/ss ] || need[iproute2]=1
  if [ ${#need[@]} -gt 0 ]; then
    apt_update
    say "apt-get install ${!need[*]}"
    apt_locked install -y -qq --no-install-recommends "${!need[@]}" >/dev/null \
      || die "apt-get install ${!need[*]} failed"
  fi
  is_static /bin/busybox || die "/bin/busybox is not static (install busybox-static)"
}

# ---------------------------------------------------------------------------
# Kernel cache: the .deb, the uncompressed vmlinux, and the module tree with a
# modules.dep generated for it (Debian's package ships none: depmod runs at
# install time). Filled once per pinned version, under a lock.

# Find a compressed payload in a bzImage by its magic, decompress it and keep
# the first result that is an ELF image (the kernel's own extract-vmlinux does
# the same). Debian's amd64 kernel is xz-compressed; the others are tried in
# case a future pin changes that.
extract_vmlinux() {
  local img=$1 out=$2 spec magic tool off
  for spec in '\xfd7zXZ\x00:xz -dc' '\x1f\x8b\x08\x00:gzip -dc' '\x28\xb5\x2f\xfd:zstd -dcq' \
              'BZh:bzip2 -dc' '\x5d\x00\x00\x00:xz -dc --format=lzma' '\x02\x21\x4c\x18:lz4 -dc'; do
    magic=${spec%%:*} tool=${spec#*:}
    command -v "${tool%% *}" >/dev/null || continue
    # shellcheck disable=SC2013 # offsets are numbers
    for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1); do
      # trailing bytes after the stream make the decompressor complain; the
      # ELF check below decides
      tail -c +$((off + 1)) "$img" | $tool >"$out.part" 2>/dev/null || true
      if [ "$(head -c 4 "$out.part" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
        mv "$out.part" "$out"
        return 0
      fi
    done
  done
  rm -f "$out.part"
  return 1
}

fill_cache() {
  local deb="$CACHE/${KERNEL_PKG}_${KERNEL_VERSION}_amd64.deb" tmp
  [ -f "$CACHE/.ready" ] && return 0
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if [ -f "$CACHE/.ready" ]; then exec 9>&-; return 0; fi
  if [ ! -f "$deb" ]; then
    say "downloading $KERNEL_PKG=$KERNEL_VERSION"
    tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
    # APT::Sandbox::User=root: the _apt user may not be able to write here
    if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$KERNEL_PKG=$KERNEL_VERSION") 2>"$tmp/err"; then
      apt_update
      (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$KERNEL_PKG=$KERNEL_VERSION") 2>"$tmp/err" || {
        cat "$tmp/err" >&2
        rm -rf "$tmp"
        die "the pinned kernel $KERNEL_PKG=$KERNEL_VERSION is no longer downloadable from the Debian mirror.
  Pin the current one in e2e/vm/run.sh (KERNEL_ABI / KERNEL_VERSION): run
    apt-get update && apt-cache depends linux-image-amd64      # -> linux-image-<ABI>
    apt-cache policy linux-image-<ABI>                           # -> its version
  then check GUEST_MODULES against the new kernel's modules.builtin."
      }
    fi
    mv "$tmp"/*.deb "$deb"
    rm -rf "$tmp"
  fi
  say "unpacking $(basename "$deb")"
  rm -rf "$CACHE/root" "$CACHE/x"
  dpkg-deb -x "$deb" "$CACHE/x"
  mkdir -p "$CACHE/root/lib/modules"
  mv "$CACHE/x/lib/modules/$KERNEL_ABI" "$CACHE/root/lib/modules/"
  cp "$CACHE/x/boot/vmlinuz-$KERNEL_ABI" "$CACHE/vmlinuz"
  cp "$CACHE/x/boot/config-$KERNEL_ABI" "$CACHE/config"
  rm -rf "$CACHE/x"
  depmod -b "$CACHE/root" "$KERNEL_ABI"
  if grep -qx 'CONFIG_PVH=y' "$CACHE/config" && extract_vmlinux "$CACHE/vmlinuz" "$CACHE/vmlinux"; then
    say "extracted vmlinux ($(du -h "$CACHE/vmlinux" | cut -f1))"
  else
    say "no PVH-bootable vmlinux could be extracted; booting the bzImage"
    rm -f "$CACHE/vmlinux"
  fi
  touch "$CACHE/.ready"
  exec 9>&-
}

# ---------------------------------------------------------------------------
# Initramfs: two uncompressed cpio archives, concatenated (the kernel unpacks
# them in turn). The base (busybox, host tools and their libraries, modules)
# is cached, keyed by this script and the tools it copies; the suite (test
# binary, nftbridge, init, args) changes every run and is built fresh.
# Uncompressed: under TCG decompression runs in emulated code.

copy_with_libs() { # copy an executable and its shared libraries into $ROOT
  local bin=$1 lib
  install -D -m 0755 "$bin" "$ROOT$bin"
  for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$ROOT$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOT$lib"
  done
}

build_initramfs() {
  local key base
  key=$( (cat "${BASH_SOURCE[0]}"; for bin in /bin/busybox "${GUEST_TOOLS[@]}"; do sha256sum "$bin"; done) | sha256sum)
  base=$CACHE/initramfs-base-${key:0:16}.cpio
  if [ -f "$base" ]; then
    say "initramfs base from cache ($(basename "$base"))"
  else
    rm -f "$CACHE"/initramfs-base-*.cpio
    build_base
    (cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$base.tmp"
    mv "$base.tmp" "$base"
  fi
  build_suite
  (cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/suite.cpio"
  cat "$base" "$WORK/suite.cpio" >"$WORK/initramfs.cpio"
}

build_base() {
  local mdir="$CACHE/root/lib/modules/$KERNEL_ABI" path name applet bin f
  ROOT=$WORK/base
  rm -rf "$ROOT"
  mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/nftbridge-vm,proc,sys,dev,run,tmp,root,var/lib,var/run,e2e,lib/modules}

  # busybox for everything that the host tools below do not replace
  install -m 0755 /bin/busybox "$ROOT/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    name=${applet##*/}
    case $name in
      sh|ip|bridge|ss|modprobe|insmod|rmmod|lsmod|modinfo|depmod|busybox) continue ;;
    esac
    [ -e "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
  done
  for bin in "${GUEST_TOOLS[@]}"; do copy_with_libs "$bin"; done
  # /bin/sh is dash, not busybox: busybox's shell runs its own applets in
  # preference to $PATH ("prefer applets"), so `sh -c 'ip ...'` from a test,
  # and init.sh itself, would get busybox's crippled ip and modprobe.
  ln -sf /usr/bin/dash "$ROOT/bin/sh"
  for name in modprobe insmod rmmod lsmod modinfo depmod; do ln -sf /usr/bin/kmod "$ROOT/sbin/$name"; done
  ln -sf /usr/sbin/ip "$ROOT/sbin/ip"
  ln -sf /usr/sbin/nft "$ROOT/sbin/nft"
  # nft prints service/protocol names from these; iproute2 reads its tables
  for f in /etc/protocols /etc/services /etc/ethertypes; do [ -f "$f" ] && cp "$f" "$ROOT$f"; done
  [ -d /etc/iproute2 ] && cp -r /etc/iproute2 "$ROOT/etc/"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ROOT/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$ROOT/etc/hosts"
  echo nftbridge-vm >"$ROOT/etc/hostname"
  # the kernel opens /dev/console for init before devtmpfs exists;
  # init.sh reopens it after mounting devtmpfs in case mknod is not allowed
  mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true

  # modules: the closure of GUEST_MODULES over modules.dep (which lists
  # transitive dependencies already), nothing legacy
  local line load=() files=()
  while read -r line; do
    case $line in
      MISSING\ *) die "module ${line#MISSING } is neither built into $KERNEL_ABI nor shipped by it; fix GUEST_MODULES" ;;
      LOAD\ *) load+=("${line#LOAD }") ;;
      FILE\ *) files+=("${line#FILE }") ;;
    esac
  done < <(awk -v want="${GUEST_MODULES[*]}" '
    function modname(p) { sub(/.*\//, "", p); sub(/\.ko.*/, "", p); gsub(/-/, "_", p); return p }
    FILENAME == ARGV[1] { builtin[modname($0)] = 1; next }
    { n = split($0, f, /:? +|:$/); name = modname(f[1]); path[name] = f[1]
      deps[name] = ""; for (i = 2; i <= n; i++) if (f[i] != "") deps[name] = deps[name] " " f[i] }
    END {
      n = split(want, w, " ")
      for (i = 1; i <= n; i++) {
        m = w[i]; optional = sub(/\?$/, "", m)
        if (m in builtin) continue
        if (!(m in path)) { if (!optional) print "MISSING " m; continue }
        print "LOAD " m
        if (!(path[m] in seen)) { seen[path[m]] = 1; print "FILE " path[m] }
        k = split(deps[m], d, " ")
        for (j = 1; j <= k; j++) if (!(d[j] in seen)) { seen[d[j]] = 1; print "FILE " d[j] }
      }
    }' "$mdir/modules.builtin" "$mdir/modules.dep")
  for path in "${files[@]}"; do
    name=${path##*/} name=${name%%.ko*} name=${name//-/_}
    [[ $name =~ $LEGACY_MODULE_RE ]] && die "module $name (a legacy x_tables module) would be in the guest, pulled in by GUEST_MODULES"
    install -D -m 0644 "$mdir/$path" "$ROOT/lib/modules/$KERNEL_ABI/$path"
  done
  cp "$mdir"/modules.builtin "$mdir"/modules.builtin.modinfo "$mdir"/modules.order "$ROOT/lib/modules/$KERNEL_ABI/"
  depmod -b "$ROOT" "$KERNEL_ABI"
  printf '%s\n' "${load[@]}" >"$ROOT/etc/nftbridge-vm/modules"
}

build_suite() {
  ROOT=$WORK/suite
  rm -rf "$ROOT"
  mkdir -p "$ROOT"/{e2e,usr/local/bin,etc/nftbridge-vm}
  install -m 0755 "$TEST_BIN" "$ROOT/e2e/e2e.test"
  for bin in ${EXTRA_BINS[@]+"${EXTRA_BINS[@]}"}; do
    install -m 0755 "$bin" "$ROOT/usr/local/bin/$(basename "$bin")"
  done
  [ -z "$TESTDATA" ] || cp -r "$TESTDATA" "$ROOT/e2e/testdata"
  printf '%s\n' "${DEFAULT_TEST_ARGS[@]}" ${TEST_ARGS[@]+"${TEST_ARGS[@]}"} >"$ROOT/etc/nftbridge-vm/args"
  printf '%s\n' ${GUEST_ENV[@]+"${GUEST_ENV[@]}"} >"$ROOT/etc/nftbridge-vm/env"
  install -m 0755 "$HERE/init.sh" "$ROOT/init"
}

# ---------------------------------------------------------------------------
ensure_host_tools
fill_cache

WORK=${NFTBRIDGE_VM_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/nftbridge-vm.XXXXXX")}
mkdir -p "$WORK"
LOG=$WORK/console.log
# The work dir (binaries, initramfs, console log) is removed on exit, except
# after a failed guest run (to look at), with --keep, or if the caller named it.
BOOTED=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$?
  if [ "$KEEP" = 1 ] || { [ "$BOOTED" = 1 ] && [ "$status" != 0 ]; }; then
    say "console log and initramfs kept in $WORK"
  elif [ -z "${NFTBRIDGE_VM_WORK:-}" ]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$TEST_BIN" ]; then
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  say "building ./e2e and ./cmd/nftbridge (CGO_ENABLED=0)"
  (cd "$REPO" && CGO_ENABLED=0 go test -c -o "$WORK/e2e.test" ./e2e) || die "go test -c ./e2e failed"
  (cd "$REPO" && CGO_ENABLED=0 go build -o "$WORK/nftbridge" ./cmd/nftbridge) || die "go build ./cmd/nftbridge failed"
  TEST_BIN=$WORK/e2e.test
  EXTRA_BINS=("$WORK/nftbridge" ${EXTRA_BINS[@]+"${EXTRA_BINS[@]}"})
  [ -n "$TESTDATA" ] || [ ! -d "$REPO/e2e/testdata" ] || TESTDATA=$REPO/e2e/testdata
fi
if ! [ -f "$TEST_BIN" ] || ! [ -x "$TEST_BIN" ]; then die "test binary $TEST_BIN is not an executable file"; fi
for bin in "$TEST_BIN" ${EXTRA_BINS[@]+"${EXTRA_BINS[@]}"}; do
  [ -f "$bin" ] || die "$bin: no such file"
  is_static "$bin" || die "$bin is dynamically linked; build it with CGO_ENABLED=0"
done
[ -z "$TESTDATA" ] || [ -d "$TESTDATA" ] || die "--testdata $TESTDATA is not a directory"

build_initramfs

# Kernel command line. module_blacklist= makes the kernel itself refuse the
# legacy modules even if one were present; panic=-1 + qemu -no-reboot turn a
# panic into a qemu exit (and oops=panic turns an oops into a panic) so a dead
# guest fails fast instead of burning the timeout. cryptomgr.notests skips
# the crypto self-tests (~0.3 s of the ~2.3 s boot under TCG).
BLACKLIST=""
while IFS=: read -r path deps; do
  name=${path##*/} name=${name%%.ko*} name=${name//-/_}
  [[ $name =~ $LEGACY_MODULE_RE ]] || continue
  if [[ $name =~ $BLACKLIST_MODULE_RE ]]; then
    BLACKLIST+=${BLACKLIST:+,}$name
  elif [[ " $deps " != *"/x_tables.ko"[.\ ]* ]]; then
    die "legacy module $name does not depend on x_tables, so it must be named in module_blacklist=: extend BLACKLIST_MODULE_RE"
  fi
done <"$CACHE/root/lib/modules/$KERNEL_ABI/modules.dep"
[[ ,$BLACKLIST, == *,x_tables,* ]] || die "x_tables not found in the kernel package; LEGACY_MODULE_RE is stale"
[ ${#BLACKLIST} -lt 1024 ] || die "module_blacklist= is ${#BLACKLIST} bytes; the kernel takes at most 1023"
CMDLINE="console=ttyS0 panic=-1 oops=panic rdinit=/init cryptomgr.notests module_blacklist=$BLACKLIST"
[ "${NFTBRIDGE_VM_KERNEL_LOG:-0}" = 1 ] || CMDLINE="quiet $CMDLINE"
CMDLINE+=${NFTBRIDGE_VM_APPEND:+ $NFTBRIDGE_VM_APPEND}
# x86's COMMAND_LINE_SIZE is 2048; a longer line would be cut silently
[ ${#CMDLINE} -lt 2000 ] || die "kernel command line is ${#CMDLINE} bytes, too close to the 2048 limit"

case $BOOT in
  elf) KERNEL=$CACHE/vmlinux; [ -f "$KERNEL" ] || KERNEL=$CACHE/vmlinuz ;;
  bzimage) KERNEL=$CACHE/vmlinuz ;;
  *) die "NFTBRIDGE_VM_BOOT must be elf or bzimage" ;;
esac

QEMU=(qemu-system-x86_64
  -nodefaults -no-user-config -display none -no-reboot
  -accel "$ACCEL" -cpu max -smp "$SMP" -m "$MEM"
  -serial stdio               # the guest console, streamed to our stdout
  -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" -append "$CMDLINE")

say "booting $KERNEL_PKG $KERNEL_VERSION ($(basename "$KERNEL"), ${MEM}M, smp $SMP, timeout $TIMEOUT; prep $((SECONDS - T0))s)"
T1=$SECONDS
BOOTED=1
set +e
# stdin from /dev/null: the guest needs no input, and qemu then leaves the
# terminal's modes alone. --foreground keeps qemu in our process group so
# Ctrl-C reaches it; -k: a qemu that ignores TERM is killed 10 s later.
timeout --foreground -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 | tee "$LOG"
QEMU_STATUS=${PIPESTATUS[0]}
set -e
ELAPSED=$((SECONDS - T1))

# Strip the CRs of the serial line discipline before looking at the log.
MARKER=$(tr -d '\r' <"$LOG" | grep -aoE 'NFTBRIDGE-VM-EXIT=[0-9]+$' | tail -n 1 | cut -d= -f2 || true)
PANIC=$(tr -d '\r' <"$LOG" | grep -am1 'Kernel panic' || true)

if [ -n "$PANIC" ]; then
  say "FAIL: the guest kernel panicked after ${ELAPSED}s: $PANIC"
  exit 125
fi
if [ "$QEMU_STATUS" = 124 ] || [ "$QEMU_STATUS" = 137 ]; then
  say "FAIL: the guest did not finish within $TIMEOUT (hung?); qemu was killed. Last console lines are above."
  exit 124
fi
if [ -z "$MARKER" ]; then
  say "FAIL: the guest stopped (qemu status $QEMU_STATUS) after ${ELAPSED}s without printing NFTBRIDGE-VM-EXIT=<n>; the suite did not complete"
  exit 125
fi
if [ "$MARKER" = 0 ]; then
  say "PASS: the suite exited 0 in the VM (guest ${ELAPSED}s, total $((SECONDS - T0))s)"
else
  say "FAIL: the suite exited $MARKER in the VM (guest ${ELAPSED}s, total $((SECONDS - T0))s)"
fi
exit "$MARKER"
