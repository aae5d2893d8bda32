# Shared set-up of the host-only vhost-user benches (sourced by scripts/bench/vhost-user-vs-qsd, cpu-per-request,
# vhost-user-scaling, profile-vhost-user and vhost-user-before-after).
#
# Pinning: with 2+ CPUs the back-ends run on CPU 1 (vduse4j's pollers with "${cpus_opt[@]}" = --cpus 1,
# qemu-storage-daemon under "${backend_pin[@]}") and the frontend on CPU 0 ("${frontend_pin[@]}"), so two spinning
# threads never share a CPU (unpinned, the scheduler sometimes stacks them and a whole run crawls at time-slice pace).
backend_pin=() frontend_pin=() cpus_opt=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    backend_pin=(taskset -c 1) frontend_pin=(taskset -c 0) cpus_opt=(--cpus 1)
fi

qsd_null_vhost_user() { # qsd_null_vhost_user SOCKET QUEUES ERR-FILE: qemu-storage-daemon's vhost-user-blk export
    # of a 1 GiB null-co node, in the background (pinned as above, at "${niced[@]}" where the caller set it); $! is
    # its pid (taskset execs it)
    ${niced[@]+"${niced[@]}"} "${backend_pin[@]}" qemu-storage-daemon --blockdev driver=null-co,node-name=n0,size=1073741824 \
        --export type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path="$1",writable=on,num-queues="$2" \
        2>"$3" &
}
