# Sourced by the project's scripts: copies what runs the CLI (bin/vduse4j, the JDK finder, the module path) into a
# directory that a guest sees (scripts/vm/run --data DIR), in the checkout's layout, so DIR/bin/vduse4j works there
# wherever the checkout lives (a checkout under /tmp is invisible in the guest: its /tmp is a fresh tmpfs).
vduse4j_stage() { # vduse4j_stage ROOT DIR
    local root=$1 dir=$2
    vduse4j_built "$root" || return 1
    mkdir -p "$dir/bin" "$dir/scripts/lib" "$dir/scripts/vm" "$dir/blockdev/target" &&
        cp "$root/bin/vduse4j" "$dir/bin/" &&
        cp "$root/scripts/lib/jdk.sh" "$root/scripts/lib/"guest-*.sh "$dir/scripts/lib/" &&
        cp "$root/scripts/vm/guest-jvm-opts" "$dir/scripts/vm/" &&
        cp -r "$root/blockdev/target/lib" "$dir/blockdev/target/"
}

vduse4j_built() { # vduse4j_built ROOT: whether bin/vduse4j has its module path, else says how to build (status 1)
    compgen -G "$1/blockdev/target/lib/vduse4j-blockdev-*.jar" >/dev/null && return 0
    echo "vduse4j: $1/blockdev/target/lib is missing: build first (mvn -B package -DskipTests)" >&2
    return 1
}
