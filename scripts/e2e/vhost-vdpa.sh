#!/bin/bash
# End-to-end test of VDUSE on vhost-vdpa (the VM path), in one guest boot: `vduse4j export --vdpa-driver vhost_vdpa`
# gives /dev/vhost-vdpa-N, which vduse4j's own vhost-vdpa frontend (`vduse4j bench --vhost-vdpa`, what a VMM does)
# drives with --verify while moving its memory (IOTLB invalidate + update: VDUSE_UPDATE_IOTLB reaches the export)
# and stopping/starting the device (VHOST_GET_VRING_BASE: VDUSE_GET_VQ_STATE), split and packed, 1 and 2 queues;
# the same frontend against qemu-storage-daemon's vduse-blk export on vhost_vdpa (the peer, E2E_VHOST_VDPA_PEER=0
# leaves it out) and short QD1/QD32 rows with their ratios.
# Runs scripts/e2e/vhost-vdpa-guest in the guest. Environment: E2E_TIMEOUT (guest, s), E2E_BENCH_SECONDS (per run).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-vhost-vdpa.XXXXXX")
trap 'rm -rf "$data"' EXIT
vduse4j_stage "$root" "$data" || exit 1
log=$data/console.log
start=$(date +%s)
"$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-600}" --data "$data" -- \
    env E2E_BENCH_SECONDS="${E2E_BENCH_SECONDS:-3}" E2E_VHOST_VDPA_PEER="${E2E_VHOST_VDPA_PEER:-1}" E2E_VHOST_VDPA_POLL_ROW="${E2E_VHOST_VDPA_POLL_ROW:-0}" /bin/bash -c "$(cat "$root/scripts/e2e/vhost-vdpa-guest")" \
    vhost-vdpa-guest </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=$(grep -c '^E2E-FAIL' "$log")
grep -q '^E2E-GUEST-DONE' "$log" || { echo "vhost-vdpa: guest script did not finish"; fails=$((fails + 1)); }
echo "==== vhost-vdpa summary ($(( $(date +%s) - start )) s) ===="
grep -E '^(E2E-FAIL|BENCH )' "$log"
python3 - "$log" <<'EOF'
import re, sys
rows = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"BENCH peer=(\S+) group=\S+ rw=\S+ qd=(\d+) jobs=\d+ iops=(\d+) p50_us=([\d.]+) p99_us=([\d.]+)", line)
    if m:
        rows[(m[1], m[2])] = tuple(float(x) for x in m.groups()[2:])
for qd in ("1", "32"):
    o, p = rows.get(("vduse4j", qd)), rows.get(("qemu-storage-daemon", qd))
    if o and p:
        print("RATIO qd=%s vduse4j/qsd iops %.2f p50 %.2f p99 %.2f" % (qd, o[0] / p[0], o[1] / p[1], o[2] / p[2]))
EOF
passed=$(grep -c '^E2E-PASS' "$log")
[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && { echo "vhost-vdpa: PASS ($passed checks)"; exit 0; }
echo "vhost-vdpa: FAIL ($fails failed, $passed passed, guest exit $rc)"
exit 1
