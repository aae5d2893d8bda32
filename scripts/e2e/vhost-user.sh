#!/bin/bash
# End-to-end test of `vduse4j export --transport vhost-user` with QEMU as the frontend: the host exports a file
# on a vhost-user socket, the test guest (scripts/vm) gets it as vhost-user-blk-pci (/dev/vda) and runs
# scripts/e2e/vhost-user-guest (fio --verify=crc32c, a checksum the host compares with the file). Twice: plain,
# and behind a vIOMMU (intel-iommu, device-iotlb, iommu_platform=on: IOTLB messages flow).
#   E2E_VHOST_USER_MODES="plain viommu" (default: plain; the vIOMMU mode does not pass yet, see docs/vhost-user.md)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
jar=$root/blockdev/target/vduse4j.jar
[ -f "$jar" ] || { echo "vhost-user: $jar missing: build first (mvn -B package -DskipTests)" >&2; exit 1; }
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
mkdir -p "$root/target"
data=$(mktemp -d "$root/target/e2e-vhost-user.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
fails=0 passed=0
for mode in ${E2E_VHOST_USER_MODES:-plain}; do
    sock=$data/vu-$mode.sock
    truncate -s 64M "$data/disk-$mode.img"
    "$JAVA" -jar "$jar" export --transport vhost-user --socket "$sock" --file "$data/disk-$mode.img" \
        --serial e2e-vu >"$data/export-$mode.out" 2>"$data/export-$mode.err" &
    pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    if [ ! -S "$sock" ]; then
        echo "E2E-FAIL $mode: export did not start: $(tr '\n' ' ' <"$data/export-$mode.err")"; fails=$((fails + 1)); continue
    fi
    log=$data/console-$mode.log
    viommu=; [ "$mode" = viommu ] && viommu=--viommu
    "$root/scripts/vm/run" --cpus 2 --mem 2048 --timeout "${E2E_TIMEOUT:-900}" --data "$data" \
        --vhost-user-socket "$sock" $viommu -- \
        /bin/bash -c "$(cat "$root/scripts/e2e/vhost-user-guest")" vhost-user-guest "$mode" </dev/null 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    kill -TERM "$pid"; wait "$pid"; erc=$?; pid=
    [ "$erc" -eq 0 ] && echo "E2E-PASS $mode host: export exited 0 on SIGTERM" ||
        { echo "E2E-FAIL $mode host: export exit status $erc"; fails=$((fails + 1)); }
    grep -h "stats\|refused\|vhost-user" "$data/export-$mode.err" | sed "s/^/E2E-INFO $mode export: /" | tail -n 30
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
done
echo "==== vhost-user summary ===="
[ "$fails" -eq 0 ] && { echo "vhost-user: PASS ($passed guest checks)"; exit 0; }
echo "vhost-user: FAIL ($fails failed, $passed passed)"
exit 1
