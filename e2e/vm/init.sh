#!/bin/sh
# PID 1 of the nftbridge e2e VM (installed as /init in the initramfs by
# run.sh; runs under dash, with busybox for the small tools). It mounts the
# usual filesystems, loads the nftables/bridge modules listed in
# /etc/nftbridge-vm/modules, runs /e2e/e2e.test as root with the arguments in
# /etc/nftbridge-vm/args and the environment below, prints
#   NFTBRIDGE-VM-EXIT=<status>
# on the console and powers off. The host harness trusts nothing but that
# line: if init dies, the kernel panics ("Attempted to kill init") and qemu
# exits without it, which the harness reports as a failure.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp TERM=dumb

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# in case the kernel found no /dev/console in the initramfs
exec </dev/console >/dev/console 2>&1

finish() {
	code=$1
	# Let the serial line drain before printing the marker and powering off:
	# tcsetattr(TCSADRAIN) via stty waits until queued output is sent.
	stty -F /dev/console "$(stty -F /dev/console -g)" 2>/dev/null
	echo
	echo "NFTBRIDGE-VM-EXIT=$code"
	stty -F /dev/console "$(stty -F /dev/console -g)" 2>/dev/null
	sync
	poweroff -f
	# not reached unless poweroff failed
	echo o >/proc/sysrq-trigger
	while :; do sleep 1; done
}

setup_failed() {
	echo "nftbridge-vm: guest setup failed: $*"
	finish 125
}

mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 varlib /var/lib
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# `ip netns add` bind-mounts namespaces under /run/netns; it makes that
# directory a shared mount itself, it only needs it to exist on a real fs.
mkdir -p /run/netns /run/lock /var/lib/nftbridge
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname -F /etc/hostname
ip link set lo up || setup_failed "ip link set lo up"

# One modprobe for all: each kmod start is a dynamically linked exec, which
# costs ~0.1 s under TCG. modprobe resolves dependencies from modules.dep.
# shellcheck disable=SC2046
modprobe -a $(cat /etc/nftbridge-vm/modules) || { dmesg | tail -n 20; setup_failed "modprobe -a $(cat /etc/nftbridge-vm/modules)"; }

# The suite's environment. NFTBRIDGE_VM=1 tells it that it runs in this VM
# (where the legacy modules must fail to load); CI=1 makes privileged tests
# fail rather than skip.
export NFTBRIDGE_VM=1 CI=1
[ -x /usr/local/bin/nftbridge ] && export NFTBRIDGE_BIN=/usr/local/bin/nftbridge
while IFS= read -r kv; do
	# shellcheck disable=SC2163 # kv is NAME=value
	[ -n "$kv" ] && export "$kv"
done </etc/nftbridge-vm/env

# Test arguments, one per line.
set --
while IFS= read -r a; do
	set -- "$@" "$a"
done </etc/nftbridge-vm/args

echo "nftbridge-vm: kernel $(uname -r), $(nft --version), $(wc -l </proc/modules) modules loaded"
echo "nftbridge-vm: running /e2e/e2e.test $*"
cd /e2e || setup_failed "cd /e2e"
dmesg -c >/dev/null # from here on, the kernel log holds only the suite's part
/e2e/e2e.test "$@"
code=$?
if [ "$code" -ne 0 ]; then
	# `quiet` hides kernel warnings from the console; show them
	echo "nftbridge-vm: the suite exited $code; kernel messages during the suite (last 60):"
	dmesg | tail -n 60
fi
finish "$code"
