# Sourced by the project's scripts: copies what runs the CLI (bin/vduse4j, the JDK finder, the built jar) into a
# directory that a guest sees (scripts/vm/run --data DIR), in the checkout's layout, so DIR/bin/vduse4j works there
# wherever the checkout lives (a checkout under /tmp is invisible in the guest: its /tmp is a fresh tmpfs).
vduse4j_stage() { # vduse4j_stage ROOT DIR
    local root=$1 dir=$2
    [ -f "$root/blockdev/target/vduse4j.jar" ] ||
        { echo "vduse4j: $root/blockdev/target/vduse4j.jar missing: build first (mvn -B package -DskipTests)" >&2; return 1; }
    mkdir -p "$dir/bin" "$dir/scripts/lib" "$dir/scripts/vm" "$dir/blockdev/target" &&
        cp "$root/bin/vduse4j" "$dir/bin/" &&
        cp "$root/scripts/lib/jdk.sh" "$dir/scripts/lib/" &&
        cp "$root/scripts/vm/guest-jvm-opts" "$dir/scripts/vm/" &&
        cp "$root/blockdev/target/vduse4j.jar" "$dir/blockdev/target/"
}
