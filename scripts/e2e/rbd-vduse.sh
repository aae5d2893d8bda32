#!/bin/bash
# End-to-end test of `vduse4j export --rbd` over VDUSE: a Ceph RBD image as /dev/vdX in the VDUSE test guest.
# The guest has no network of its own, so the test makes one that stays on this machine (scripts/lib/rbd-net.sh): a
# network namespace with a tap device, a one-node cluster inside it bound to the tap's address, and the guest booted
# inside that namespace with a virtio-net NIC on the tap. One boot runs scripts/e2e/rbd-vduse-guest:
#   fio verify on /dev/vdX (2 queues: the reaper thread; several block sizes; WRITE_ZEROES);
#   the OSD killed with SIGKILL in the middle of a fio verify and restarted 6 s later (this script does it when the guest
#   asks): I/O stalls, resumes, verify clean, the control socket answers during the stall, no NEEDS_RESET, no VDUSE
#   timeout in the kernel log;
#   live resize: `rbd resize` in the guest, /dev/vdX grows with no SIGHUP (the export polls rbd_get_size);
#   a checksum of 8 MiB it wrote; then this script checks that `rbd export` of the image holds exactly that.
# Takes the shared guest lock (/tmp/vduse4j-guest.lock) for its whole run. E2E_KEEP=1 keeps target/e2e-rbd-vduse.*.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
. "$root/scripts/lib/apt.sh"
. "$root/scripts/lib/rbd-net.sh"
command -v fio >/dev/null || { echo "rbd-vduse: fio is missing (apt-get install fio)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "rbd-vduse: needs root (network namespace, tap, Ceph daemons)" >&2; exit 1; }
vduse4j_apt_install iproute2 || exit 1
vduse4j_built "$root" || exit 1
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-rbd-vduse.XXXXXX")
watcher=
cleanup() {
    [ -n "$watcher" ] && kill "$watcher" 2>/dev/null && wait "$watcher" 2>/dev/null
    rbd_net_down
    [ -n "${E2E_KEEP:-}" ] || rm -rf "$data"
}
trap cleanup EXIT
fails=0 passed=0
pass() { echo "E2E-PASS $*"; passed=$((passed + 1)); }
fail() { echo "E2E-FAIL $*"; fails=$((fails + 1)); }

exec 9>/tmp/vduse4j-guest.lock
flock 9 # one guest at a time on this machine; the cluster comes up only once it is our turn
t0=$SECONDS
rbd_net_up "$root" "$data" vdisk 64M || exit 1
conf=$rbd_conf
echo "rbd-vduse: cluster up on $rbd_host_ip in namespace $rbd_ns ($((SECONDS - t0)) s)"
vduse4j_stage "$root" "$data" || exit 1

# The guest asks for the OSD kill (osd-kill), we kill it (osd-killed), restart it 6 s later (osd-restarted).
osd_watch() {
    for _ in $(seq 2400); do [ -f "$data/osd-kill" ] && break; sleep 0.25; done
    [ -f "$data/osd-kill" ] || return 0
    kill -9 "$(cat "$VDUSE4J_CEPH_DIR/run/osd.0.pid")" && echo killed >"$data/osd-killed"
    sleep "${E2E_OSD_DOWN:-6}"
    N ceph-osd -c "$conf" -i 0 2>>"$VDUSE4J_CEPH_DIR/log/start.log" && echo restarted >"$data/osd-restarted"
}
osd_watch &
watcher=$!

log=$data/console.log
rbd_net_run --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-600}" --data "$data" -- \
    /bin/bash -c "$(cat "$root/scripts/e2e/rbd-vduse-guest")" rbd-vduse-guest </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$((passed + $(grep -c '^E2E-PASS' "$log"))); fails=$((fails + $(grep -c '^E2E-FAIL' "$log")))
grep -q '^E2E-GUEST-DONE' "$log" && [ "$rc" -eq 0 ] || fail "guest: exit $rc, script did not finish"

# What the cluster holds is what the guest wrote, and the image has the size the guest grew it to.
if [ -f "$data/guest.sha256" ] && N rbd -c "$conf" export rbd/vdisk "$data/vdisk.img" >/dev/null 2>&1; then
    host=$(head -c 8M "$data/vdisk.img" | sha256sum | cut -d' ' -f1)
    [ "$host" = "$(cat "$data/guest.sha256")" ] && pass "host: rbd export holds what the guest wrote (sha256 $host)" ||
        fail "host: rbd export checksum $host != guest's $(cat "$data/guest.sha256")"
    size=$(stat -c %s "$data/vdisk.img")
    [ "$size" -eq $((96 << 20)) ] && pass "host: the image is 96 MiB after the guest's rbd resize" ||
        fail "host: image size $size after the resize"
else
    fail "host: no guest checksum, or rbd export failed"
fi
echo "==== rbd-vduse summary ===="
grep -E '^(E2E-FAIL|E2E-FIO)' "$log"
echo "rbd-vduse: $passed passed, $fails failed ($((SECONDS - t0)) s)"
[ "$fails" -eq 0 ]
