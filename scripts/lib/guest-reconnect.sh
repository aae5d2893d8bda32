# Sourced in the VDUSE test guest (staged by scripts/lib/stage.sh as $VDUSE4J_DATA/scripts/lib/guest-reconnect.sh) by
# scripts/e2e/vduse-reconnect-guest and scripts/soak-guest: what both need to start an export, kill it under fio by
# fio's write progress, take it over again and judge fio's verify. No state of its own: every function takes its
# device, process or file as arguments.

# export_dev OUT PID: waits (90 s at most) for the /dev/vdX line `vduse4j export` prints first on OUT while PID lives;
# prints it (nothing if the export did not come up).
export_dev() {
    local d=
    for _ in $(seq 900); do
        d=$(head -n 1 "$1" 2>/dev/null)
        [ -n "$d" ] && break
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "$d"
}
# dev_writes DEV: write requests completed on DEV so far (/sys/block/X/stat field 5)
dev_writes() { local w; read -r _ _ _ _ w _ <"/sys/block/${1#/dev/}/stat"; echo "$w"; }
# dev_inflight DEV: requests the block layer has in flight on DEV (reads + writes)
dev_inflight() { awk '{print $1 + $2}' "/sys/block/${1#/dev/}/inflight"; }
# wait_writes DEV TARGET PID: waits until DEV has completed TARGET writes, or PID (fio) ended. Kills go by fio's
# progress, not by wall time: under TCG fio's speed varies several-fold between hosts and runs, and a kill must hit the
# write phase.
wait_writes() {
    while kill -0 "$3" 2>/dev/null; do
        [ "$(dev_writes "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
}
# fio_clean FIO_OUTPUT: fio's output shows no I/O error and no verify failure
fio_clean() { ! grep -qiE "verify: bad|err= *[1-9]|crc32c: verify failed" "$1"; }
# resubmitted_sum ERR: the requests a takeover resubmitted, summed over the queues of its "took over the device" line
resubmitted_sum() { grep -oE '[0-9]+ resubmitted' "$1" | awk '{s += $1} END {print s + 0}'; }
# resubmitted_none WHAT LINE: LINE (a "took over the device" line) contains WHAT and no queue resubmitted anything
resubmitted_none() { grep -q "$1" <<<"$2" && ! grep -qE '[1-9][0-9]* resubmitted' <<<"$2"; }
# first_completion ERR: waits (30 s at most) for the restarted export's "first request completed" line on ERR; prints
# what follows those words (nothing if no request completed)
first_completion() {
    for _ in $(seq 300); do grep -q "first request completed" "$1" && break; sleep 0.1; done
    grep -m1 "first request completed" "$1" | sed 's/.*first request completed //'
}
