# Sourced in the VDUSE test guest (staged by scripts/lib/stage.sh) by scripts/e2e/rbd-vduse-guest and scripts/soak-guest:
# the guest's end of scripts/lib/rbd-net.sh's link to the cluster.
# rbd_net_guest_up: reads $VDUSE4J_DATA/net.env (HOST_IP: the cluster's address, GUEST_IP: ours, CEPH_CONF), puts
# GUEST_IP on the only NIC (virtio-net on the host namespace's tap) and waits (30 s at most) until the mon at
# HOST_IP:3300 answers; prints what it found; status 1 if it does not answer.
rbd_net_guest_up() {
    . "$VDUSE4J_DATA/net.env"
    local nic; nic=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
    ip link set "$nic" up && ip addr add "$GUEST_IP/24" dev "$nic"
    if ! timeout 30 bash -c "until echo >/dev/tcp/$HOST_IP/3300; do sleep 0.5; done" 2>/dev/null; then
        echo "network: the mon at $HOST_IP:3300 is not reachable over $nic"; return 1
    fi
    echo "network: $nic $GUEST_IP reaches the mon at $HOST_IP:3300"
}
