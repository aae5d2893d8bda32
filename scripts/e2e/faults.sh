#!/bin/bash
# End-to-end fault injection through the real kernel (one guest boot, a few minutes): `vduse4j export
# --inject-faults` on a RAM disk; inside the guest (scripts/e2e/faults-guest) fio must see exactly the injected
# errors as EIO, the device must keep serving, a backend stall longer than the VDUSE msg_timeout must not break
# the device while its control path answers, and SIGTERM during a stall must tear down cleanly.
# SOAK_MINUTES=N (default 0: none) adds a short scripts/soak run to the same boot.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
command -v fio >/dev/null || { echo "faults: fio is missing (apt-get install fio)" >&2; exit 1; }
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-faults.XXXXXX")
trap 'rm -rf "$data"' EXIT
vduse4j_stage "$root" "$data" || exit 1
cp "$root/scripts/soak-guest" "$data/"
soak=${SOAK_MINUTES:-0}
[ "$soak" = 0 ] && soak=
log=$data/console.log
"$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-600}" --data "$data" -- \
    /usr/bin/env SOAK_MINUTES="$soak" /bin/bash -c "$(cat "$root/scripts/e2e/faults-guest")" faults-guest \
    </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=$(grep -c '^E2E-FAIL' "$log")
grep -q '^E2E-GUEST-DONE' "$log" || { echo "faults: guest script did not finish"; fails=$((fails + 1)); }
echo "==== faults summary ===="
grep -E '^(E2E-FAIL|E2E-FAULTS|E2E-SOAK)' "$log"
passed=$(grep -c '^E2E-PASS' "$log")
[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && { echo "faults: PASS ($passed checks)"; exit 0; }
echo "faults: FAIL ($fails failed, $passed passed, guest exit $rc)"
exit 1
