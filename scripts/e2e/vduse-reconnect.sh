#!/bin/bash
# End-to-end test of the VDUSE reconnect (issue 13) against the real kernel, in ONE boot of the VDUSE test guest:
# kill -9 of `vduse4j export` under fio randwrite --verify=crc32c at QD32, restart of the same command, fio finishes
# clean on the same /dev/vdX: --packed (one queue, kernel bounce) killed twice in a row under one fio run; split with
# --queues 2 --bounce hugepages killed under fio, then an upgrade stop (SIGUSR1) under fio, a kill while idle (data
# written O_DIRECT and buffered before it is in the backing file and reads back after it), and four mismatched
# restarts (other file, size, queue count, ring layout) refused with one line naming `vduse4j destroy`.
# Runs scripts/e2e/vduse-reconnect-guest in the guest; prints each restart's time to its first completed request
# (E2E-RESTART lines) and the time per phase (E2E-INFO time:).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
command -v fio >/dev/null || { echo "vduse-reconnect: fio is missing (apt-get install fio)" >&2; exit 1; }
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-vduse-reconnect.XXXXXX") || exit 1
trap 'rm -rf "$data"' EXIT
vduse4j_stage "$root" "$data" || exit 1
log=$data/console.log
"$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-900}" --data "$data" -- \
    /bin/bash -c "$(cat "$root/scripts/e2e/vduse-reconnect-guest")" vduse-reconnect-guest </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=$(grep -c '^E2E-FAIL' "$log")
grep -q '^E2E-GUEST-DONE' "$log" || { echo "vduse-reconnect: guest script did not finish"; fails=$((fails + 1)); }
echo "==== vduse-reconnect summary ===="
grep -E '^(E2E-FAIL|E2E-RESTART)' "$log"
passed=$(grep -c '^E2E-PASS' "$log")
[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && { echo "vduse-reconnect: PASS ($passed checks)"; exit 0; }
echo "vduse-reconnect: FAIL ($fails failed, $passed passed, guest exit $rc)"
exit 1
