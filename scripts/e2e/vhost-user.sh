#!/bin/bash
# End-to-end test of `vduse4j export --transport vhost-user` with QEMU as the frontend: the host exports a file
# on a vhost-user socket, the test guest (scripts/vm) gets it as vhost-user-blk-pci (/dev/vda) and runs
# scripts/e2e/vhost-user-guest (fio --verify=crc32c, a checksum the host compares with the file, the cache mode switched
# to writethrough and back through /sys/block/vda/cache_type). Once per mode:
#   plain      split ring, 1 queue
#   viommu     split ring, 1 queue, behind a vIOMMU (intel-iommu, device-iotlb, iommu_platform=on: IOTLB misses,
#              updates and invalidations flow)
#   packed-mq  packed ring (export --packed, QEMU packed=on), 2 queues; fio runs one job per queue
#   packed, mq the two halves of packed-mq on their own (not in the default list)
#   viommu-mq  viommu with 2 queues (not in the default list)
# Environment: E2E_VHOST_USER_MODES (default "plain viommu packed-mq"), E2E_TIMEOUT (per guest, s),
#   E2E_VDUSE4J (the launcher, default bin/vduse4j), E2E_EXPORT_ARGS (more `vduse4j export` options, e.g. --io-engine pread), E2E_JAVA_OPTS (e.g. -Dvduse4j.vhostuser.iotlbTrace=true), E2E_QEMU_ARGS (added to
#   every guest's QEMU command line, e.g. "-trace enable=vtd_inv_desc* -D /tmp/qemu.trace"), E2E_KEEP=1 (keep
#   target/e2e-vhost-user.* with the consoles and the exports' logs).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
v4j=${E2E_VDUSE4J:-$root/bin/vduse4j}
. "$root/scripts/lib/stage.sh"
vduse4j_built "$root" || exit 1
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-vhost-user.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "${E2E_KEEP:-}" ] || rm -rf "$data"; }
trap cleanup EXIT
fails=0 passed=0
for mode in ${E2E_VHOST_USER_MODES:-plain viommu packed-mq}; do
    # QEMU's vhost-user-blk queue-size defaults to 128, the export's to 256: the device's seg_max (queue size - 2)
    # would then let Linux build indirect tables longer than the ring, which the ring refuses (docs/vhost-user.md,
    # "Queue size"). Both sides get the same size here.
    export_args=(--queue-size 256) vm_args=() qemu_args="-global vhost-user-blk.queue-size=256 ${E2E_QEMU_ARGS:-}" queues=1
    case $mode in
        plain) ;;
        viommu) vm_args=(--viommu) ;;
        viommu-mq) vm_args=(--viommu); queues=2 ;;
        packed) export_args+=(--packed); qemu_args+=" -global vhost-user-blk.packed=on" ;;
        mq) queues=2 ;;
        packed-mq) export_args+=(--packed); qemu_args+=" -global vhost-user-blk.packed=on"; queues=2 ;;
        *) echo "E2E-FAIL $mode: unknown mode (plain, viommu, viommu-mq, packed, mq, packed-mq)"; fails=$((fails + 1)); continue ;;
    esac
    sock=$data/vu-$mode.sock
    truncate -s 64M "$data/disk-$mode.img"
    start=$SECONDS
    # shellcheck disable=SC2086 # E2E_EXPORT_ARGS: words
    JAVA_OPTS=${E2E_JAVA_OPTS:-} "$v4j" export --transport vhost-user --socket "$sock" --file "$data/disk-$mode.img" \
        --serial e2e-vu --queues "$queues" "${export_args[@]}" ${E2E_EXPORT_ARGS:-} \
        >"$data/export-$mode.out" 2>"$data/export-$mode.err" &
    pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    if [ ! -S "$sock" ]; then
        echo "E2E-FAIL $mode: export did not start: $(tr '\n' ' ' <"$data/export-$mode.err")"; fails=$((fails + 1)); continue
    fi
    log=$data/console-$mode.log
    "$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-900}" --data "$data" \
        --vhost-user-socket "$sock" --num-queues "$queues" "${vm_args[@]}" --qemu-args "$qemu_args" -- \
        /bin/bash -c "$(cat "$root/scripts/e2e/vhost-user-guest")" vhost-user-guest "$mode" </dev/null 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    kill -TERM "$pid"; wait "$pid"; erc=$?; pid=
    [ "$erc" -eq 0 ] && echo "E2E-PASS $mode host: export exited 0 on SIGTERM" ||
        { echo "E2E-FAIL $mode host: export exit status $erc"; fails=$((fails + 1)); }
    grep -h "stats\|refused\|vhost-user" "$data/export-$mode.err" | sed "s/^/E2E-INFO $mode export: /" | tail -n 30
    # the guest switched to writethrough for one fio run (vhost-user-guest): the back-end flushed after its writes
    wt=$(awk '/stats queue/ { for (i = 1; i <= NF; i++) if ($i ~ /^writeThroughFlushes=/) { split($i, a, "="); s += a[2] } }
              END { print s + 0 }' "$data/export-$mode.err")
    if [ "$wt" -gt 0 ] && grep -q "config write at offset 32 applied: 00" "$data/export-$mode.err"; then
        echo "E2E-PASS $mode host: SET_CONFIG writeback=0 applied, $wt writethrough flushes"
    else
        echo "E2E-FAIL $mode host: no writethrough (writeThroughFlushes $wt, SET_CONFIG lines:" \
            "$(grep -c 'config write' "$data/export-$mode.err"))"; fails=$((fails + 1))
    fi
    if [ "$queues" -gt 1 ]; then
        for q in $(seq 0 $((queues - 1))); do
            n=$(sed -n "s/.*stats queue $q: requests=\([0-9]*\).*/\1/p" "$data/export-$mode.err" | tail -n 1)
            if [ "${n:-0}" -gt 0 ]; then
                echo "E2E-PASS $mode host: queue $q served $n requests"
            else
                echo "E2E-FAIL $mode host: queue $q served no requests"; fails=$((fails + 1))
            fi
        done
    fi
    if [ -f "$data/guest-$mode.sha256" ]; then
        host=$(head -c 8M "$data/disk-$mode.img" | sha256sum | cut -d' ' -f1)
        if [ "$host" = "$(cat "$data/guest-$mode.sha256")" ]; then
            echo "E2E-PASS $mode host: backing file holds what the guest wrote"
        else
            echo "E2E-FAIL $mode host: backing file checksum $host != guest's"; fails=$((fails + 1))
        fi
    else
        echo "E2E-FAIL $mode host: the guest wrote no checksum"; fails=$((fails + 1))
    fi
    grep -q '^E2E-GUEST-DONE' "$log" || { echo "E2E-FAIL $mode: guest script did not finish"; fails=$((fails + 1)); }
    [ "$rc" -eq 0 ] || { echo "E2E-FAIL $mode: guest exit status $rc"; fails=$((fails + 1)); }
    fails=$((fails + $(grep -c '^E2E-FAIL' "$log")))
    passed=$((passed + $(grep -c '^E2E-PASS' "$log")))
    echo "E2E-INFO $mode: $((SECONDS - start)) s"
done
echo "==== vhost-user summary ===="
[ "$fails" -eq 0 ] && { echo "vhost-user: PASS ($passed guest checks)"; exit 0; }
echo "vhost-user: FAIL ($fails failed, $passed passed)"
exit 1
