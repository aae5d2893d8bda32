#!/usr/bin/env bash
# The README's first command on a fresh checkout: clones this repository's HEAD into a new directory under /tmp
# (which the guest cannot see: its /tmp is a fresh tmpfs), runs `scripts/run --demo` there to the end, and checks
# its exit status and that fio's verify in the guest passed. Uses the shared guest kernel cache (~/.cache/vduse4j)
# and Maven's local repository, so it costs a build and one guest boot.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v git >/dev/null || { echo "fresh-clone: git is missing (apt-get install git)" >&2; exit 1; }
clone=$(mktemp -d /tmp/vduse4j-fresh.XXXXXX)
trap 'rm -rf "$clone"' EXIT
rev=$(git -C "$root" rev-parse HEAD) || exit 1
# fetch HEAD itself: a plain clone of a worktree would check out the main repository's branch
git -C "$clone" init -q && git -C "$clone" fetch -q "$root" "$rev" && git -C "$clone" checkout -q --detach FETCH_HEAD ||
    { echo "fresh-clone: FAIL: cannot clone $root at $rev" >&2; exit 1; }
echo "fresh-clone: $rev cloned into $clone; running scripts/run --demo there"
log=$clone.log
trap 'rm -rf "$clone" "$log"' EXIT
(cd "$clone" && timeout -k 10 "${FRESH_CLONE_TIMEOUT:-1800}" scripts/run --demo) </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fails=0
[ "$rc" -eq 0 ] || { echo "fresh-clone: FAIL: scripts/run exited with $rc"; fails=$((fails + 1)); }
grep -q '^demo: fio verify: PASS' "$log" || { echo "fresh-clone: FAIL: no 'demo: fio verify: PASS' line"; fails=$((fails + 1)); }
if grep -q 'No such file or directory' "$log"; then
    echo "fresh-clone: FAIL: something is missing:"; grep 'No such file or directory' "$log"; fails=$((fails + 1))
fi
[ "$fails" -eq 0 ] && { echo "fresh-clone: PASS (scripts/run exit 0, fio verify passed, checkout under /tmp)"; exit 0; }
exit 1
