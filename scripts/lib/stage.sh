# Sourced by the project's scripts: copies what runs the CLI (bin/vduse4j, the JDK finder, the module path) into a
# directory that a guest sees (scripts/vm/run --data DIR), in the checkout's layout, so DIR/bin/vduse4j works there
# wherever the checkout lives (a checkout under /tmp is invisible in the guest: its /tmp is a fresh tmpfs).
# The launcher and the module path go to a copy named by their content, under /var/tmp/vduse4j-UID (which the
# guest sees, and its non-root users can read: a guest check runs the CLI as nobody), with the AOT cache made for
# that copy's module path once (scripts/aot-cache: the JVM takes a cache only on the module path it was made for):
# DIR/bin/vduse4j and DIR/blockdev/target/lib link there, so every guest JVM starts from the cache
# (docs/operations.md, "Start-up time"). When that directory is not ours alone (someone else's, or writable by
# others: its launcher runs as root), is under /tmp (invisible in the guest), or the cache cannot be made, DIR gets
# plain copies, without one. VDUSE4J_LAUNCHER_CACHE names another directory.
vduse4j_stage() { # vduse4j_stage ROOT DIR
    local root=$1 dir=$2 launcher
    vduse4j_built "$root" || return 1
    mkdir -p "$dir/bin" "$dir/scripts/lib" "$dir/scripts/vm" "$dir/blockdev/target" &&
        cp "$root/scripts/lib/jdk.sh" "$root/scripts/lib/"guest-*.sh "$dir/scripts/lib/" &&
        cp "$root/scripts/vm/guest-jvm-opts" "$dir/scripts/vm/" || return 1
    if launcher=$(vduse4j_launcher_copy "$root"); then
        ln -s "$launcher/bin/vduse4j" "$dir/bin/vduse4j" && ln -s "$launcher/blockdev/target/lib" "$dir/blockdev/target/lib"
    else
        cp "$root/bin/vduse4j" "$dir/bin/" && cp -r "$root/blockdev/target/lib" "$dir/blockdev/target/"
    fi
}

vduse4j_launcher_copy() { # vduse4j_launcher_copy ROOT: prints the content-named copy with its AOT cache (made if new)
    local root=$1 cache=${VDUSE4J_LAUNCHER_CACHE:-/var/tmp/vduse4j-$(id -u)} key copy
    case $cache in /tmp|/tmp/*) return 1 ;; esac
    mkdir -p -m 755 "$cache" 2>/dev/null && [ -O "$cache" ] && [ -z "$(find "$cache" -maxdepth 0 -perm /022)" ] || return 1
    key=$(cat "$root/bin/vduse4j" "$root/scripts/lib/jdk.sh" "$root/scripts/aot-cache" "$root"/blockdev/target/lib/*.jar \
        /usr/lib/jvm/*/release 2>/dev/null | sha256sum | cut -c1-16)
    copy=$cache/launcher-$key
    (
        flock 9
        [ -f "$copy/blockdev/target/vduse4j.aot.path" ] && exit 0
        rm -rf "$copy"
        mkdir -p "$copy/bin" "$copy/scripts/lib" "$copy/blockdev/target" &&
            cp -p "$root/bin/vduse4j" "$copy/bin/" && cp -p "$root/scripts/lib/jdk.sh" "$copy/scripts/lib/" &&
            cp -rp "$root/blockdev/target/lib" "$copy/blockdev/target/" || exit 1
        "$root/scripts/aot-cache" "$copy" >/dev/null ||
            { echo "vduse4j: the guest JVMs start without an AOT cache" >&2; rm -rf "$copy"; exit 1; }
        chmod -R a+rX "$copy"
        # Copies of other builds, unused for two days, go (each is ~25 MB).
        find "$cache" -maxdepth 1 -name 'launcher-*' ! -name "launcher-$key" -mtime +2 -exec rm -rf {} + 2>/dev/null
        exit 0
    ) 9>"$cache/launcher.lock" || return 1
    touch "$copy"
    printf '%s\n' "$copy"
}

vduse4j_built() { # vduse4j_built ROOT: whether bin/vduse4j has its module path, else says how to build (status 1)
    compgen -G "$1/blockdev/target/lib/vduse4j-blockdev-*.jar" >/dev/null && return 0
    echo "vduse4j: $1/blockdev/target/lib is missing: build first (mvn -B package -DskipTests)" >&2
    return 1
}
