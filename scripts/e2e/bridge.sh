#!/bin/bash
# End-to-end test of `vduse4j export --vhost-user-target` (the VDUSE-to-vhost-user bridge) against the real kernel
# and a real target: boots the VDUSE test guest once (scripts/vm) and runs scripts/e2e/bridge-guest in it.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
command -v fio >/dev/null || { echo "bridge: fio is missing (apt-get install fio)" >&2; exit 1; }
command -v qemu-storage-daemon >/dev/null || { echo "bridge: qemu-storage-daemon is missing (apt-get install qemu-system-common)" >&2; exit 1; }
data=$(mktemp -d "$root/target/e2e-bridge.XXXXXX" 2>/dev/null || { mkdir -p "$root/target"; mktemp -d "$root/target/e2e-bridge.XXXXXX"; })
trap 'rm -rf "$data"' EXIT
vduse4j_stage "$root" "$data" || exit 1
log=$data/console.log
"$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-900}" --data "$data" -- \
    /bin/bash -c "$(cat "$root/scripts/e2e/bridge-guest")" bridge-guest </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=$(grep -c '^E2E-FAIL' "$log")
grep -q '^E2E-GUEST-DONE' "$log" || { echo "bridge: guest script did not finish"; fails=$((fails + 1)); }
echo "==== bridge summary ===="
grep -E '^E2E-FAIL' "$log"
passed=$(grep -c '^E2E-PASS' "$log")
[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && { echo "bridge: PASS ($passed checks)"; exit 0; }
echo "bridge: FAIL ($fails failed, $passed passed, guest exit $rc)"
exit 1
