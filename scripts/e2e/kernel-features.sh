#!/bin/bash
# End-to-end test of the kernel-dependent VDUSE features (--bounce-size, --irq-affinity): boots the guest
# (scripts/vm/run: --kernel from $VDUSE4J_KERNEL, default the newest) and runs scripts/e2e/kernel-features-guest,
# which expects them to work on 6.12 and to be reported unavailable (and refused when asked) on 6.1.
# scripts/test runs it on both kernels. ~2 min on TCG.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib/stage.sh"
command -v fio >/dev/null || { echo "kernel-features: fio is missing (apt-get install fio)" >&2; exit 1; }
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-kernel-features.XXXXXX")
trap 'rm -rf "$data"' EXIT
vduse4j_stage "$root" "$data" || exit 1
log=$data/console.log
start=$(date +%s)
"$root/scripts/vm/run" --cpus 2 --mem 3072 --timeout "${E2E_TIMEOUT:-600}" --data "$data" -- \
    /bin/bash -c "$(cat "$root/scripts/e2e/kernel-features-guest")" kernel-features-guest </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=$(grep -c '^E2E-FAIL' "$log")
grep -q '^E2E-GUEST-DONE' "$log" || { echo "kernel-features: guest script did not finish"; fails=$((fails + 1)); }
echo "==== kernel-features summary ===="
grep -m1 '^vm: guest kernel' "$log"
grep -E '^(E2E-FAIL|E2E-INFO .*features)' "$log"
passed=$(grep -c '^E2E-PASS' "$log")
elapsed=$(( $(date +%s) - start ))
[ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && { echo "kernel-features: PASS ($passed checks, ${elapsed} s)"; exit 0; }
echo "kernel-features: FAIL ($fails failed, $passed passed, guest exit $rc, ${elapsed} s)"
exit 1
