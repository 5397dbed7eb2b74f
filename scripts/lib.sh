# Shared by scripts/test and scripts/quickstart: install and start what Drover needs on a Debian
# or Ubuntu machine. Every step says what it does and fails loudly.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $*"; fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found: install $* by hand (this script knows Debian and Ubuntu)"
    if [ "$APT_UPDATED" = 0 ]; then
        # Another apt (unattended upgrades on a fresh machine) may hold the lock: wait for it
        # instead of failing.
        log "apt-get update (waits up to 10 minutes for another apt to finish)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
        APT_UPDATED=1
    fi
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local port=$1 what=$2
    for _ in $(seq 1 100); do port_open "$port" && return 0; sleep 0.2; done
    die "$what is not listening on 127.0.0.1:$port"
}

ensure_zookeeper() {
    if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then
        apt_install zookeeper
    fi
    [ -f /usr/share/java/zookeeper.jar ] || die "ZooKeeper's jar is missing after installing the zookeeper package"
    [ -f /usr/share/java/slf4j-nop.jar ] || apt_install libslf4j-java
}

# DuckDB's Python package: the scenario tests read the current view of a data source with it,
# as a user without the API would.
ensure_duckdb() {
    if ! command -v python3 >/dev/null; then apt_install python3 python3-pip; fi
    if ! python3 -c 'import duckdb' 2>/dev/null; then
        log "installing DuckDB's Python package from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check duckdb \
            || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages duckdb \
            || die "cannot install the duckdb Python package"
    fi
}

# moto's S3 server (PyPI's moto[server]): the S3 scenario tests run against it.
ensure_moto() {
    if ! command -v python3 >/dev/null; then apt_install python3 python3-pip; fi
    if ! command -v moto_server >/dev/null; then
        log "installing moto's S3 server from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' \
            || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'moto[server]' \
            || die "cannot install moto[server]"
        command -v moto_server >/dev/null || die "moto_server is not on PATH after installing moto[server]"
    fi
}

ensure_cargo() {
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
}
