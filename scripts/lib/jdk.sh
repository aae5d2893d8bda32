# Sourced by the project's scripts: selects a JDK 25+ for Maven and java, or exits with one line.
# Order: $JAVA_HOME if it is 25+, then Temurin 25's Debian path, then any /usr/lib/jvm/*25* or newer.
vduse4j_java_feature() { # prints the feature release of the JDK at $1 (e.g. 25), or nothing
    local rel="$1/release"
    [ -r "$rel" ] || return 0
    sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$rel"
}

vduse4j_select_jdk() {
    local c v
    for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
        [ -n "$c" ] && [ -x "$c/bin/java" ] || continue
        v=$(vduse4j_java_feature "$c")
        if [ -n "$v" ] && [ "$v" -ge 25 ]; then
            export JAVA_HOME="$c"
            export PATH="$JAVA_HOME/bin:$PATH"
            return 0
        fi
    done
    echo "vduse4j: no JDK 25 found: install one (e.g. Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64) or set JAVA_HOME to it" >&2
    exit 1
}
