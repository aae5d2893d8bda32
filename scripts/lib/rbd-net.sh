# Sourced by scripts/e2e/rbd-vduse.sh and scripts/soak (--rbd): a one-node Ceph cluster the VDUSE test guest reaches,
# with all traffic on this machine. The guest has no network of its own, so this makes one: a network namespace with a
# tap device, the cluster inside it bound to the tap's address (scripts/ceph/up, VDUSE4J_CEPH_ADDR), and the guest
# booted inside that namespace (rbd_net_run) with a virtio-net NIC on the tap. The guest side is
# scripts/lib/guest-rbd-net.sh (staged with the CLI). Needs root and iproute2.
#
#   rbd_net_up ROOT DATA IMAGE SIZE   namespace + cluster + image (rbd create --size SIZE rbd/IMAGE); writes
#                                     DATA/net.env for the guest; sets rbd_ns, rbd_conf; status 1 with a line if not
#   rbd_net_run ARGS...               scripts/vm/run ARGS with the NIC on the tap, inside the namespace
#   rbd_net_down                      the cluster stopped, the namespace removed (safe to call twice, or before up)
#   N CMD...                          CMD inside the namespace

rbd_ns= rbd_tap=v4jtap0 rbd_host_ip=10.254.12.1 rbd_guest_ip=10.254.12.2 rbd_conf= rbd_root=
# Ceph daemons must not inherit a descriptor of the guest lock (fd 9 when the caller took it itself, fd 3 under
# `flock FILE CMD`): a daemon outliving the run would hold the lock for good
N() { ip netns exec "$rbd_ns" "$@" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; }
rbd_net_up() {
    local root=$1 data=$2 image=$3 size=$4
    rbd_root=$root rbd_ns=vduse4j-rbd-$$
    export VDUSE4J_CEPH_DIR=$data/ceph
    ip netns add "$rbd_ns" && N ip link set lo up && N ip tuntap add dev $rbd_tap mode tap &&
        N ip addr add $rbd_host_ip/24 dev $rbd_tap && N ip link set $rbd_tap up ||
        { echo "E2E-FAIL network namespace $rbd_ns with tap $rbd_tap"; return 1; }
    eval "$(N env VDUSE4J_CEPH_ADDR=$rbd_host_ip "$root/scripts/ceph/up" "$VDUSE4J_CEPH_DIR")" ||
        { echo "E2E-FAIL cluster did not come up in $rbd_ns"; return 1; }
    rbd_conf=$CEPH_CONF
    N rbd -c "$rbd_conf" create --size "$size" "rbd/$image" || { echo "E2E-FAIL rbd create rbd/$image"; return 1; }
    printf 'HOST_IP=%s\nGUEST_IP=%s\nCEPH_CONF=%s\n' $rbd_host_ip $rbd_guest_ip "$rbd_conf" >"$data/net.env"
}
rbd_net_run() {
    N "$rbd_root/scripts/vm/run" \
        --qemu-args "-netdev tap,id=n0,ifname=$rbd_tap,script=no,downscript=no -device virtio-net-pci,netdev=n0" "$@"
}
rbd_net_down() {
    [ -n "$rbd_ns" ] || return 0
    [ -n "${VDUSE4J_CEPH_DIR:-}" ] && "$rbd_root/scripts/ceph/down" "$VDUSE4J_CEPH_DIR" >/dev/null 2>&1
    ip netns del "$rbd_ns" 2>/dev/null
    rbd_ns=
}
