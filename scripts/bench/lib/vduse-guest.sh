# Shared guest-side helpers of the VDUSE benchmarks (sourced by scripts/bench/*-guest, which run inside the
# scripts/vm guest): start qemu-storage-daemon's vduse-blk export or vduse4j's export, run fio on the resulting
# /dev/vdX and print one "BENCH ..." line per run.
#   BENCH peer=P group=G rw=RW qd=N jobs=N iops=N p50_us=X p99_us=X
# The host side (lib/ratio-table.py) divides each row by the qemu-storage-daemon row of the same group, rw, qd and
# jobs. Needs VDUSE4J_DATA (the --data share holding the staged CLI, bin/vduse4j) and BENCH_RUNTIME (seconds per fio run);
# BENCH_JAVA_OPTS (optional) adds JVM options to every vduse4j export.
D=${VDUSE4J_DATA:?no data share}
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
RUNTIME=${BENCH_RUNTIME:-10}
GROUP=default
# Where fio runs and where the back-ends run: with BACKEND_CPU set, fio is confined to FIO_CPUS, qemu-storage-daemon
# runs under taskset and vduse4j pins its pollers (--cpus), so the back-end never shares a CPU with fio.
FIO_CPUS=0-1 BACKEND_CPU=
dev= pid=
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# nap SECONDS: a sleep without a process (read with a timeout on a FIFO that nobody writes). The wait for fio below
# once ran /bin/sleep every 0.1 s, and those fork+execs took ~17 % of the 2-vCPU TCG guest's CPU during every measured
# run, from both peers alike (scripts/bench/profile-vduse-guest, 2026-12-04).
nap_fifo=$(mktemp -u /tmp/nap.XXXXXX) && mkfifo "$nap_fifo" && exec {NAP_FD}<>"$nap_fifo" && rm -f "$nap_fifo"
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }
# JVM options of every vduse4j export: C1 only under QEMU TCG (scripts/vm/guest-jvm-opts: TCG can execute the jump
# HotSpot patches over a replaced method's entry half-written, docs/benchmarks.md "The guest JVM crash").
# BENCH_JAVA_OPTS comes last, so BENCH_JAVA_OPTS=-XX:TieredStopAtLevel=4 brings C2 back. No core dumps: writing
# one takes minutes in the guest.
EXPORT_JAVA_OPTS="-XX:ErrorFile=/tmp/hs_err_%p.log -XX:-CreateCoredumpOnCrash $("$LIB/../../vm/guest-jvm-opts")"
EXPORT_JAVA_OPTS+=" ${BENCH_JAVA_OPTS:-}"
echo "BENCH-INFO export JVM options: $EXPORT_JAVA_OPTS"

wait_dev() { # wait_dev NAME: sets dev to /dev/vdX of vdpa device NAME
    dev=
    for _ in $(seq 300); do
        dev=$(ls /sys/bus/vdpa/devices/"$1"/virtio*/block 2>/dev/null) && [ -b "/dev/$dev" ] && { dev=/dev/$dev; return 0; }
        dev=; nap 0.1
    done
    return 1
}

fio_json() { # fio_json PEER RW QD JOBS ENGINE: one fio run on $dev; a run that does not end aborts the benchmark
    # FIO_BS (default 4k) and FIO_RW_LABEL (default RW: the rw= of the BENCH line) for other block sizes; FIO_RATE_IOPS
    # for fio's --rate_iops (an open-loop rate, evenly spaced)
    local limit=$((RUNTIME + 60)) n=0 fpid
    fio --name=b --filename="$dev" --direct=1 --rw="$2" --bs="${FIO_BS:-4k}" --time_based \
        --runtime="$RUNTIME" --ramp_time=2 --ioengine="$5" --iodepth="$3" --numjobs="$4" --group_reporting \
        ${FIO_RATE_IOPS:+--rate_iops="$FIO_RATE_IOPS"} \
        --cpus_allowed="$FIO_CPUS" --cpus_allowed_policy=split --output-format=json >/tmp/fio.json 2>/dev/null &
    fpid=$!
    while kill -0 $fpid 2>/dev/null; do
        if [ $n -ge $((limit * 10)) ]; then
            # I/O that never completes leaves fio unkillable (D state): report, then end the guest command
            echo "BENCH-ERROR peer=$1 group=$GROUP rw=$2 qd=$3 jobs=$4: fio did not finish within $limit s"
            abort_run
        fi
        nap 0.1
        n=$((n + 1))
    done
    wait $fpid
    python3 -c 'import json,sys
job = json.load(sys.stdin)["jobs"][0]
r = job["write"] if "write" in sys.argv[3] else job["read"]
p = r["clat_ns"]["percentile"]
print("BENCH peer=%s group=%s rw=%s qd=%s jobs=%s iops=%d p50_us=%.1f p99_us=%.1f"
      % (sys.argv[1], sys.argv[2], sys.argv[6], sys.argv[4], sys.argv[5], r["iops"],
         p["50.000000"] / 1e3, p["99.000000"] / 1e3))' "$1" "$GROUP" "$2" "$3" "$4" "${FIO_RW_LABEL:-$2}" </tmp/fio.json \
        || echo "BENCH-ERROR peer=$1 group=$GROUP rw=$2 qd=$3 jobs=$4"
}

abort_run() { # a run that cannot go on: diagnostics, then "BENCH-ABORT class=C" and the end of the guest script.
    # C is tcg-torn-entry-patch when the export JVM died of the known QEMU TCG crash (lib/jvm-crash-class.py; the
    # host reports it as a warning), otherwise "other" (a hang or a crash that may be ours: the benchmark fails).
    local class=other
    if crash_reported; then # a crashing JVM is still writing its report: let it end
        for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; nap 0.1; done
    fi
    hang_diagnostics
    # the known crash only: a live, stuck export, no report, or any other crash report may be ours
    if crash_reported; then
        python3 "$LIB/jvm-crash-class.py" /tmp/hs_err_*.log >/tmp/crash-class && ! kill -0 "$pid" 2>/dev/null &&
            class=tcg-torn-entry-patch
        sed 's/^/BENCH-DIAG crash class: /' /tmp/crash-class
    fi
    echo "BENCH-ABORT class=$class"
    exit 1
}

crash_reported() { compgen -G '/tmp/hs_err_*.log' >/dev/null; } # a JVM crash report (-XX:ErrorFile) exists

hang_diagnostics() { # what a stuck run leaves behind: requests in flight, the back-end's threads, blocked tasks
    local d=${dev#/dev/} t
    echo "BENCH-DIAG $d inflight (reads writes): $(cat "/sys/block/$d/inflight" 2>&1)"
    if kill -0 "$pid" 2>/dev/null; then
        for t in /proc/"$pid"/task/*; do
            echo "BENCH-DIAG task $(cat "$t/comm" 2>/dev/null) state=$(awk '{print $3}' "$t/stat" 2>/dev/null)" \
                "wchan=$(cat "$t/wchan" 2>/dev/null) $(tr '\n' ' ' <"$t/stack" 2>/dev/null | cut -c1-300)"
        done | grep -E 'vduse4j|main|java' | head -40
        timeout 30 "${JAVA%/java}/jcmd" "$pid" Thread.print 2>&1 | grep -A8 '"vduse4j-\|"main"' | sed 's/^/BENCH-DIAG /' | head -80
    else
        echo "BENCH-DIAG the exporting process $pid is gone"
    fi
    sed 's/^/BENCH-DIAG export: /' /tmp/v4j.err | tail -n 5
    sed 's/^/BENCH-DIAG export stdout: /' /tmp/v4j.out | head -n 20 # a JVM crash report starts there
    for f in /tmp/hs_err_*.log; do
        [ -f "$f" ] || continue
        { grep -aE -A25 '^# Problematic frame|^Current thread|^Stack: ' "$f" | head -n 80
          grep -aE -A18 '^Instructions: ' "$f" | head -n 19; grep -aE -m1 -A3 '^CPU: ' "$f"; } | sed 's/^/BENCH-DIAG hs_err: /'
    done
    echo w >/proc/sysrq-trigger 2>/dev/null # blocked tasks to the kernel log
    dmesg | tail -n 60 | sed 's/^/BENCH-DIAG dmesg: /'
}

qsd_export() { # qsd_export QUEUES BLOCKDEV-OPTIONS: qemu-storage-daemon vduse-blk export of node n0 as $dev
    ${BACKEND_CPU:+taskset -c "$BACKEND_CPU"} qemu-storage-daemon --blockdev "$2" \
        --export type=vduse-blk,id=e0,node-name=n0,name=qsd0,writable=on,num-queues="$1",queue-size=256 >/tmp/qsd.log 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -c /dev/vduse/qsd0 ] && break; nap 0.1; done
    vdpa dev add name qsd0 mgmtdev vduse && wait_dev qsd0 && return 0
    echo "BENCH-ERROR qemu-storage-daemon export did not come up: $(tr '\n' ' ' </tmp/qsd.log)"
    return 1
}

qsd_stop() {
    vdpa dev del qsd0; kill $pid; wait $pid 2>/dev/null
}

ours_export() { # ours_export LABEL EXPORT-OPTIONS...: vduse4j export as $dev
    local label=$1; shift
    rm -f /tmp/hs_err_*.log
    JAVA_OPTS="$EXPORT_JAVA_OPTS" "$D/bin/vduse4j" export --name v4j0 --queue-size 256 ${BACKEND_CPU:+--cpus "$BACKEND_CPU"} "$@" \
        >/tmp/v4j.out 2>/tmp/v4j.err &
    pid=$!
    for _ in $(seq 600); do [ -s /tmp/v4j.out ] && break; kill -0 $pid 2>/dev/null || break; nap 0.1; done
    dev=$(head -n 1 /tmp/v4j.out)
    [ -b "$dev" ] && return 0
    if kill -0 $pid 2>/dev/null; then # alive but silent for 60 s: stuck, like a run whose I/O never completes
        echo "BENCH-ERROR $label did not start within 60 s"
        dev=/dev/$(ls /sys/bus/vdpa/devices/v4j0/virtio*/block 2>/dev/null)
        abort_run
    fi
    if crash_reported; then # the JVM crashed while starting
        echo "BENCH-ERROR $label crashed while starting"
        abort_run
    fi
    echo "BENCH-ERROR $label did not start: $(tr '\n' ' ' </tmp/v4j.err)"
    return 1
}

ours_stop() { # ours_stop LABEL: SIGTERM, then at most 60 s for a clean exit before reporting and killing
    kill -TERM $pid
    for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; nap 0.1; done
    if kill -0 $pid 2>/dev/null; then
        echo "BENCH-ERROR $1 did not stop within 60 s: $(tr '\n' ' ' </tmp/v4j.err)"
        kill -9 $pid
    fi
    wait $pid 2>/dev/null
    # per-queue counters printed at exit: requests vs notifications shows how far interrupts were coalesced
    grep -a 'requests=' /tmp/v4j.err | sed "s/^/BENCH-INFO $1 /"
}
