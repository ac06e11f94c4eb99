#!/usr/bin/env bash
# A real MySQL 9 server (caching_sha2_password) for hoop's tests, from
# Debian's unstable suite in a debootstrap chroot. MariaDB, the project's
# everyday MySQL peer, has no caching_sha2_password.
#
#   scripts/mysql9-chroot.sh build         build the chroot once (about a minute
#                                          and 930 MB; needs root and debootstrap)
#   scripts/mysql9-chroot.sh start [PORT]  build if absent, start mysqld on
#                                          127.0.0.1:PORT (default 63306), create
#                                          the test user; prints the port
#   scripts/mysql9-chroot.sh sql "SQL"     run SQL as root over the unix socket
#   scripts/mysql9-chroot.sh stop          stop mysqld (by its pid file)
#   scripts/mysql9-chroot.sh status        exit 0 when mysqld runs
#
# Idempotent: a second `build` or `start` finds what is there and reuses it.
# The test user is hoop_sha2@'%' with password $HOOP_MYSQL9_PASSWORD (default
# below), identified WITH caching_sha2_password. TLS and the RSA key pair are
# the ones mysqld generates itself at initialisation.
set -euo pipefail

ROOT=${HOOP_MYSQL9_ROOT:-/var/cache/hoop-mysql9}
DATADIR=/var/lib/mysqltest
RUNDIR=/run/mysqld
SOCKET=$RUNDIR/m.sock
PIDFILE=$RUNDIR/m.pid
USER_NAME=hoop_sha2
USER_PASSWORD=${HOOP_MYSQL9_PASSWORD:-sha2-pw-4b1d}

die() { echo "mysql9-chroot: $*" >&2; exit 1; }

# Progress for the slow steps of a first build, which otherwise run silently
# for minutes with their output in $ROOT.log.
say() { echo "mysql9-chroot: $(date -u +%H:%M:%S) $*"; }

built() { [ -x "$ROOT/usr/sbin/mysqld" ] && [ -f "$ROOT/.hoop-initialised" ]; }

build() {
    if built; then return 0; fi
    [ "$(id -u)" = 0 ] || die "building the chroot needs root"
    say "building a MySQL 9 chroot in $ROOT (once: a few minutes and about 930 MB; log in $ROOT.log)"
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null
    fi
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
        rm -rf "$ROOT"
        say "debootstrap: a minimal Debian sid from $mirror"
        debootstrap --variant=minbase sid "$ROOT" "$mirror" >"$ROOT.log" 2>&1 ||
            die "debootstrap failed, see $ROOT.log"
    fi
    say "installing mysql-server-core and mysql-client in the chroot"
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends mysql-server-core mysql-client >>"$ROOT.log" 2>&1 ||
        die "installing MySQL in the chroot failed, see $ROOT.log"
    chroot "$ROOT" sh -c "getent group mysql >/dev/null || groupadd -r mysql;
        getent passwd mysql >/dev/null || useradd -r -g mysql -d /nonexistent -s /bin/false mysql;
        rm -rf $DATADIR; mkdir -p $DATADIR $RUNDIR; chown mysql:mysql $DATADIR $RUNDIR"
    say "initialising mysqld's data directory"
    chroot "$ROOT" mysqld --initialize-insecure --user=mysql --datadir=$DATADIR >>"$ROOT.log" 2>&1 ||
        die "mysqld --initialize failed, see $ROOT.log"
    touch "$ROOT/.hoop-initialised"
    say "the MySQL 9 chroot is built"
}

running() {
    [ -f "$ROOT$PIDFILE" ] && kill -0 "$(cat "$ROOT$PIDFILE")" 2>/dev/null
}

sql() {
    chroot "$ROOT" mysql --socket=$SOCKET -uroot -N -B -e "$1"
}

start() {
    local port=${1:-63306}
    build
    if ! running; then
        chroot "$ROOT" sh -c "mkdir -p $RUNDIR; chown -R mysql:mysql $RUNDIR $DATADIR"
        setsid chroot "$ROOT" mysqld --user=mysql --datadir=$DATADIR --port="$port" \
            --bind-address=127.0.0.1 --socket=$SOCKET --mysqlx=OFF --pid-file=$PIDFILE \
            --secure-file-priv= --log-error=$DATADIR/error.log </dev/null >/dev/null 2>&1 &
        local launcher=$! i
        for i in $(seq 1 600); do
            if sql "SELECT 1" >/dev/null 2>&1 || ! kill -0 "$launcher" 2>/dev/null; then break; fi
            sleep 0.1
        done
        sql "SELECT 1" >/dev/null 2>&1 || die "mysqld did not start, see $ROOT$DATADIR/error.log"
    fi
    sql "CREATE USER IF NOT EXISTS $USER_NAME@'%' IDENTIFIED WITH caching_sha2_password BY '$USER_PASSWORD';
         ALTER USER $USER_NAME@'%' IDENTIFIED WITH caching_sha2_password BY '$USER_PASSWORD';
         GRANT ALL ON *.* TO $USER_NAME@'%'"
    sql "SELECT @@port"
}

stop() {
    if running; then
        local pid
        pid=$(cat "$ROOT$PIDFILE")
        kill "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
}

case "${1:-}" in
build) build ;;
start) start "${2:-}" ;;
sql) built || die "no chroot at $ROOT"; sql "${2:?SQL}" ;;
stop) stop ;;
status) running ;;
*) die "usage: $0 build | start [PORT] | sql SQL | stop | status" ;;
esac
