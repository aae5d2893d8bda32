#!/bin/bash
# End-to-end test of `vduse4j export` against the real kernel: boots the VDUSE test guest
# (scripts/vm), runs scripts/e2e/vduse-export-guest inside it, then checks from the host that
# the backing file on the shared directory holds exactly what the guest wrote.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
command -v fio >/dev/null || { echo "vduse-export: fio is missing (apt-get install fio)" >&2; exit 1; }
data=$(mktemp -d "$root/target/e2e-vduse-export.XXXXXX" 2>/dev/null || { mkdir -p "$root/target"; mktemp -d "$root/target/e2e-vduse-export.XXXXXX"; })
trap 'rm -rf "$data"' EXIT
vduse4j_stage "$root" "$data" || exit 1
cp "$root/scripts/lib/prom-parse.py" "$data/"
log=$data/console.log
"$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-1200}" --data "$data" -- \
    /bin/bash -c "$(cat "$root/scripts/e2e/vduse-export-guest")" vduse-export-guest </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=$(grep -c '^E2E-FAIL' "$log")
if [ -f "$data/guest.sha256" ]; then
    host=$(head -c 8M "$data/host.img" | sha256sum | cut -d' ' -f1)
    if [ "$host" = "$(cat "$data/guest.sha256")" ]; then
        echo "E2E-PASS host: backing file holds exactly what the guest wrote (sha256 $host)"
    else
        echo "E2E-FAIL host: backing file checksum $host != guest's $(cat "$data/guest.sha256")"; fails=$((fails + 1))
    fi
else
    echo "E2E-FAIL host: the guest wrote no checksum"; fails=$((fails + 1))
fi
grep -q '^E2E-GUEST-DONE' "$log" || { echo "vduse-export: guest script did not finish"; fails=$((fails + 1)); }
echo "==== vduse-export summary ===="
grep -E '^(E2E-FAIL|E2E-FIO)' "$log"
passed=$(grep -c '^E2E-PASS' "$log")
[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && { echo "vduse-export: PASS ($passed checks)"; exit 0; }
echo "vduse-export: FAIL ($fails failed, $passed passed, guest exit $rc)"
exit 1
