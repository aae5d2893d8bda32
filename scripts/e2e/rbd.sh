#!/bin/bash
# End-to-end test of `vduse4j export --rbd` against a real one-node Ceph cluster (scripts/ceph/up), on the host:
#   1. bad input: no such pool, no such image, no ceph.conf, snapshot opened writable, unreachable cluster (bounded):
#      one line, non-zero exit, no socket left;
#   2. per ring (split, packed): `export --rbd POOL/IMAGE --transport vhost-user --queues 2` driven by
#      `vduse4j bench --verify` (randrw at 4k and 64k, 2 queues; the bench reads back everything it wrote);
#   3. an OSD killed with SIGKILL in the middle of a verify bench and restarted: I/O stalls, resumes, verify clean,
#      the export survives; then `rbd resize` grows the image and the export follows with no SIGHUP;
#   4. `rbd export` of the images: every 4 KiB block is either untouched (zeros) or holds exactly the bench's pattern;
#   5. a read-only snapshot export (POOL/IMAGE@SNAP) reads; the device is read-only; the snapshot holds the pattern;
#   6. one queue (its poller reaps librbd's completions itself): bench --verify;
#   7. a QEMU TCG guest with vhost-user-blk-pci on an --rbd export runs scripts/e2e/vhost-user-guest (fio verify,
#      writethrough switch, checksum); `rbd export` of the image holds the guest's checksum (E2E_RBD_GUEST=0 skips;
#      the boot takes the shared guest lock /tmp/vduse4j-guest.lock).
# Environment: E2E_KEEP=1 (keep target/e2e-rbd.* with the logs and the cluster's), E2E_RBD_RUNTIME (s per bench).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
vduse4j_built "$root" || exit 1
J=("$root/bin/vduse4j")
runtime=${E2E_RBD_RUNTIME:-4}
seed=7
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-rbd.XXXXXX")
export VDUSE4J_CEPH_DIR=$data/ceph
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    "$root/scripts/ceph/down" "$VDUSE4J_CEPH_DIR" ${E2E_KEEP:+--keep} >/dev/null 2>&1
    [ -n "${E2E_KEEP:-}" ] || rm -rf "$data"
}
trap cleanup EXIT
fails=0 passed=0
pass() { echo "E2E-PASS $*"; passed=$((passed + 1)); }
fail() { echo "E2E-FAIL $*"; fails=$((fails + 1)); }

t0=$SECONDS
eval "$("$root/scripts/ceph/up" "$VDUSE4J_CEPH_DIR")" || { echo "E2E-FAIL cluster did not come up"; exit 1; }
echo "rbd: cluster up in $((SECONDS - t0)) s"
conf=$CEPH_CONF
size=32M

# ---- 1. bad input ----
expect_refused() { # name, expected text, export args...
    local name=$1 want=$2; shift 2
    local sock=$data/bad.sock s0=$SECONDS
    rm -f "$sock"
    timeout 60 "${J[@]}" export "$@" --transport vhost-user --socket "$sock" >"$data/bad.out" 2>"$data/bad.err"
    local rc=$? lines
    lines=$(wc -l <"$data/bad.err")
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$lines" -eq 1 ] && grep -q "$want" "$data/bad.err" && [ ! -e "$sock" ]; then
        pass "refused $name in $((SECONDS - s0)) s: $(cat "$data/bad.err")"
    else
        fail "$name: exit $rc, $lines line(s): $(head -c 600 "$data/bad.err" | tr '\n' ' ')"
    fi
}
rbd create --size $size rbd/split && rbd create --size $size rbd/packed || { echo "E2E-FAIL rbd create"; exit 1; }
expect_refused "no such pool" "no such pool: nopool" --rbd nopool/split --ceph-conf "$conf"
expect_refused "no such image" "no such image: rbd/nosuch" --rbd rbd/nosuch --ceph-conf "$conf"
expect_refused "no ceph.conf" "ceph.conf not found" --rbd rbd/split --ceph-conf "$data/missing.conf"
expect_refused "snapshot writable" "is read-only" --rbd rbd/split@snap1 --ceph-conf "$conf"
expect_refused "bad spec" "POOL/IMAGE" --rbd justaname --ceph-conf "$conf"
sed 's/^mon host = .*/mon host = v2:127.0.0.1:3309/' "$conf" >"$data/unreachable.conf"
expect_refused "unreachable cluster" "unreachable" --rbd rbd/split --ceph-conf "$data/unreachable.conf" --ceph-timeout 3
# A client that insists on cephx against this auth-none cluster, with no keyring: refused at connect.
sed 's/^auth client required = none/auth client required = cephx/' "$conf" >"$data/cephx.conf"
echo "keyring = $data/no-such-keyring" >>"$data/cephx.conf"
expect_refused "auth failure (cephx, no keyring)" "Ceph" --rbd rbd/split --ceph-conf "$data/cephx.conf" --ceph-id nobody \
    --ceph-timeout 3

# ---- 2./3. bench --verify through the export ----
start_export() { # ring, extra args...
    local ring=$1; shift
    sock=$data/$ring.sock
    "${J[@]}" export --rbd "$@" --ceph-conf "$conf" --transport vhost-user --socket "$sock" \
        >"$data/export-$ring.out" 2>"$data/export-$ring.err" &
    pid=$!
    for _ in $(seq 150); do [ -S "$sock" ] && return 0; sleep 0.1; done
    fail "$ring: export did not start: $(tr '\n' ' ' <"$data/export-$ring.err")"
    return 1
}
stop_export() { # ring
    kill -TERM "$pid"; wait "$pid"; local erc=$?; pid=
    [ $erc -eq 0 ] && pass "$1: export exited 0 on SIGTERM" || fail "$1: export exit status $erc"
}
bench() { # label, bench args...
    local label=$1; shift
    local out
    out=$(timeout 180 "${J[@]}" bench --socket "$sock" --verify --seed $seed --size $size "$@" 2>&1)
    local rc=$?
    if [ $rc -eq 0 ] && grep -q "errors=0, verified [1-9][0-9]* blocks, verify errors=0" <<<"$out"; then
        pass "$label: ${out##*: }"
    else
        fail "$label: exit $rc: $(tail -c 800 <<<"$out" | tr '\n' ' ')"
    fi
}
for ring in split packed; do
    ringflag=(); [ $ring = packed ] && ringflag=(--packed)
    start_export $ring rbd/$ring --queues 2 "${ringflag[@]}" || continue
    for bs in 4k 64k; do
        bench "$ring randrw bs=$bs" --rw randrw --bs $bs --iodepth 8 --queues 2 --runtime "$runtime" "${ringflag[@]}"
    done
    if [ $ring = split ]; then
        # 3. SIGKILL the OSD in the middle of a verify bench, restart it: the bench stalls and resumes.
        "${J[@]}" bench --socket "$sock" --verify --seed $seed --size $size --rw randrw --bs 4k --iodepth 8 \
            --queues 2 --runtime $((runtime + 12)) >"$data/bench-osdkill.out" 2>&1 &
        bpid=$!
        sleep 2
        osd=$(cat "$VDUSE4J_CEPH_DIR/run/osd.0.pid")
        kill -9 "$osd"; k=$SECONDS
        sleep 3
        ceph-osd -c "$conf" -i 0 2>>"$VDUSE4J_CEPH_DIR/log/start.log"
        echo "rbd: osd.0 killed and restarted after $((SECONDS - k)) s"
        wait $bpid; brc=$?
        out=$(cat "$data/bench-osdkill.out")
        if [ $brc -eq 0 ] && grep -q "errors=0, verified [1-9][0-9]* blocks, verify errors=0" <<<"$out" && kill -0 "$pid"; then
            pass "OSD SIGKILL + restart mid-bench: ${out##*: }"
        else
            fail "OSD SIGKILL + restart: bench exit $brc, export alive: $(kill -0 "$pid" && echo yes || echo no): $(tail -c 800 <<<"$out" | tr '\n' ' ')"
        fi
        bench "split after the OSD restart" --rw randrw --bs 4k --iodepth 8 --queues 2 --runtime 2
        # Live resize, no SIGHUP: the export polls rbd_get_size once a second and resizes (a config change to the
        # frontend); a new bench over all 48 MiB proves the frontend sees the new capacity.
        rbd resize --size 48M rbd/split >/dev/null 2>&1; r0=$SECONDS
        for _ in $(seq 100); do grep -q "resized to 50331648 bytes" "$data/export-$ring.err" && break; sleep 0.1; done
        grep -q "resized to 50331648 bytes" "$data/export-$ring.err" &&
            pass "rbd resize, no SIGHUP: the disk grew to 48 MiB within $((SECONDS - r0)) s" ||
            fail "resize: $(tail -2 "$data/export-$ring.err" | tr '\n' ' ')"
        size=48M bench "split after the resize: bench --verify over all 48 MiB" --rw randrw --bs 4k --iodepth 8 \
            --queues 2 --runtime 2
    fi
    stop_export $ring
done

# ---- 4. rbd export: what the cluster holds is what the bench wrote ----
check_image() { # image
    rbd export "rbd/$1" "$data/$1.img" >/dev/null 2>&1 || { fail "rbd export $1"; return; }
    if python3 - "$data/$1.img" $seed <<'PY'
import sys
from array import array
path, seed = sys.argv[1], int(sys.argv[2])
K, M = 0x9E3779B97F4A7C15, (1 << 64) - 1
data = array('Q'); data.frombytes(open(path, 'rb').read())
words = 4096 // 8
written = zero = 0
for b in range(len(data) // words):
    blk = data[b * words:(b + 1) * words]
    if not any(blk):
        zero += 1
        continue
    base = b * 4096
    for i, w in enumerate(blk):
        if w != ((base + 8 * i + 1) * K & M) ^ seed:
            print(f"block {b} word {i}: {w:#x} is neither zero nor the pattern"); sys.exit(1)
    written += 1
print(f"{written} blocks hold the pattern, {zero} untouched")
sys.exit(0 if written > 0 else 1)
PY
    then pass "rbd export of $1 matches what was written"; else fail "rbd export of $1 differs"; fi
}
check_image split
check_image packed

# ---- 5. a read-only snapshot ----
rbd snap create rbd/packed@s1 >/dev/null 2>&1
if start_export snap rbd/packed@s1 --readonly; then
    out=$(timeout 60 "${J[@]}" bench --socket "$sock" --rw randread --bs 4k --iodepth 4 --runtime 1 --size $size 2>&1)
    grep -q "errors=0" <<<"$out" && pass "snapshot export reads: ${out##*: }" || fail "snapshot reads: $out"
    out=$(timeout 60 "${J[@]}" bench --socket "$sock" --rw write --bs 4k --iodepth 1 --runtime 1 --size $size 2>&1)
    grep -q "read-only" <<<"$out" && pass "snapshot export is read-only (VIRTIO_BLK_F_RO): $out" ||
        fail "snapshot took writes: $out"
    stop_export snap
    check_image packed@s1
fi

# ---- 6. one queue: the poller reaps ----
rbd create --size $size rbd/one >/dev/null 2>&1
if start_export one rbd/one --queues 1; then
    bench "1 queue randrw bs=4k" --rw randrw --bs 4k --iodepth 16 --queues 1 --runtime "$runtime"
    stop_export one
    check_image one
fi

# ---- 7. a QEMU guest's vhost-user-blk-pci with fio verify ----
if [ "${E2E_RBD_GUEST:-1}" != 0 ]; then
    rbd create --size 64M rbd/guest >/dev/null 2>&1
    if start_export guest rbd/guest --queues 1 --queue-size 256 --serial e2e-vu; then
        log=$data/console-guest.log
        flock /tmp/vduse4j-guest.lock "$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-900}" \
            --data "$data" --vhost-user-socket "$sock" --num-queues 1 --qemu-args "-global vhost-user-blk.queue-size=256" -- \
            /bin/bash -c "$(cat "$root/scripts/e2e/vhost-user-guest")" vhost-user-guest plain </dev/null >"$log" 2>&1
        rc=$?
        grep -E '^E2E-(PASS|FAIL)' "$log" | sed 's/^E2E-\(PASS\|FAIL\) /E2E-\1 guest /'
        passed=$((passed + $(grep -c '^E2E-PASS' "$log"))); fails=$((fails + $(grep -c '^E2E-FAIL' "$log")))
        grep -q '^E2E-GUEST-DONE' "$log" && [ $rc -eq 0 ] || fail "guest: exit $rc, script did not finish (see $log)"
        stop_export guest
        if [ -f "$data/guest-plain.sha256" ] && rbd export rbd/guest "$data/guest.img" >/dev/null 2>&1 &&
            [ "$(head -c 8M "$data/guest.img" | sha256sum | cut -d' ' -f1)" = "$(cat "$data/guest-plain.sha256")" ]; then
            pass "rbd export of the guest's image holds what the guest wrote"
        else
            fail "rbd export of the guest's image differs from the guest's checksum"
        fi
    fi
fi

echo "rbd: $passed passed, $fails failed ($((SECONDS - t0)) s)"
[ $fails -eq 0 ]
