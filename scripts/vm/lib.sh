# Shared helpers for scripts/vm (sourced, not executed).
# shellcheck shell=bash disable=SC2034
VM_CACHE=${VDUSE4J_CACHE:-${HOME:-/root}/.cache/vduse4j}

vm_log() { echo "vm: $*" >&2; }
vm_die() { echo "vm: $*" >&2; exit 1; }

# apt_install PKG...: install packages non-interactively; `apt-get update` only if needed.
apt_install() {
    command -v apt-get >/dev/null || return 1
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" </dev/null ||
        { apt-get update -q </dev/null && apt-get install -y -q "$@" </dev/null; }
}

# need_cmd CMD PKG: make sure CMD exists, installing PKG with apt if it does not.
need_cmd() {
    command -v "$1" >/dev/null && return 0
    vm_log "installing $2 (for $1)"
    apt_install "$2" >&2 && command -v "$1" >/dev/null || vm_die "$1 is missing and apt-get could not install $2"
}

# The guest kernels scripts/vm can build (Debian's linux-source-<series>), oldest first.
VM_KERNELS="6.1 6.12"
# vm_kernel_series [SERIES]: the series to use: SERIES if given (6.1 or 6.12), else the newest.
vm_kernel_series() {
    local s=${1:-${VM_KERNELS##* }}
    case " $VM_KERNELS " in
        *" $s "*) echo "$s" ;;
        *) echo "vm: unknown kernel '$s' (known: $VM_KERNELS)" >&2; return 1 ;;
    esac
}
