#!/usr/bin/env bash
# Brings up local PostgreSQL and RabbitMQ for development and CI on Debian 12, as root,
# without systemd (INFRA.md §2). Idempotent: installs only what is missing, starts only what
# is down, creates the `crossdock` role and database only if absent. Takes about a second
# when everything already runs.
#
#   sudo scripts/services.sh
#
# Afterwards: postgres://crossdock:crossdock@127.0.0.1:5432/crossdock and
# amqp://guest:guest@127.0.0.1:5672/%2f (guest works over loopback only).
set -euo pipefail

readonly DB_USER=crossdock
readonly DB_PASSWORD=crossdock
readonly DB_NAME=crossdock
readonly PG_WAIT_SECONDS=30
readonly RABBIT_WAIT_SECONDS=90

readonly START_NS=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - START_NS) / 1000000)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }
log() { printf 'services: [%s] %s\n' "$(elapsed)" "$*"; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and starts services)"

# --- packages ---------------------------------------------------------------------------

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
installed postgresql || missing+=(postgresql)
installed rabbitmq-server || missing+=(rabbitmq-server)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    # The package scripts try to start the services and are refused by policy-rc.d
    # ("invoke-rc.d: policy-rc.d denied execution of start"): harmless, started below.
    apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

# --- PostgreSQL -------------------------------------------------------------------------

pg_version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null \
    | sort -V | tail -n 1)
[[ -n $pg_version ]] || die "no PostgreSQL cluster under /etc/postgresql (is postgresql-common installed?)"
[[ -d /etc/postgresql/$pg_version/main ]] || die "no cluster $pg_version/main under /etc/postgresql"
pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" { print $3 }')
pg_port=${pg_port:-5432}

if pg_isready -q -h 127.0.0.1 -p "$pg_port"; then
    log "PostgreSQL $pg_version is running on port $pg_port"
else
    # `status` exits 0 when the cluster runs (but may still be starting up): just wait then.
    if ! pg_ctlcluster "$pg_version" main status >/dev/null 2>&1; then
        log "starting PostgreSQL $pg_version"
        pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start \
            || die "pg_ctlcluster $pg_version main start failed; see /var/log/postgresql/postgresql-$pg_version-main.log"
    fi
    deadline=$((SECONDS + PG_WAIT_SECONDS))
    until pg_isready -q -h 127.0.0.1 -p "$pg_port"; do
        ((SECONDS < deadline)) \
            || die "PostgreSQL not accepting connections on 127.0.0.1:$pg_port after ${PG_WAIT_SECONDS}s; see /var/log/postgresql/"
        sleep 0.2
    done
    log "PostgreSQL $pg_version is ready on port $pg_port"
fi

# --- RabbitMQ ---------------------------------------------------------------------------

# Fast path: the AMQP listener answers the protocol header with a connection.start frame
# (frame type 1). RabbitMQ opens its listeners at the end of its boot, so this means ready,
# and it takes milliseconds where each rabbitmqctl call starts an Erlang VM (~0.5 s).
amqp_answers() {
    timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\x00\x00\x09\x01" >&3 && head -c 1 <&3' \
        2>/dev/null | od -An -tx1 | grep -q 01
}

# Never run `rabbitmq-server -detached` when a node already runs: the second VM exits but
# deletes the running node's pid file. Hence the ping guard.
if amqp_answers; then
    rabbit_started=skip
elif rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    rabbit_started=false
else
    log "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || die "rabbitmq-server -detached failed; see /var/log/rabbitmq/"
    rabbit_started=true
fi
# `await_startup` fails at once (exit 69) until the new node has registered with epmd, so
# poll it; once registered it waits for the boot to finish, bounded by what time is left.
deadline=$((SECONDS + RABBIT_WAIT_SECONDS))
while [[ $rabbit_started != skip ]]; do
    left=$((deadline - SECONDS))
    ((left > 0)) \
        || die "RabbitMQ not ready after ${RABBIT_WAIT_SECONDS}s; see /var/log/rabbitmq/ and 'rabbitmq-diagnostics status'"
    timeout "$left" rabbitmqctl -q --timeout "$left" await_startup >/dev/null 2>&1 && break
    sleep 0.5
done
if [[ $rabbit_started == true ]]; then
    log "RabbitMQ is ready"
else
    log "RabbitMQ is running"
fi

# --- role and database ------------------------------------------------------------------

# As the postgres OS user, so peer authentication works on a fresh install. From / so psql
# does not complain that it cannot read root's home directory.
as_postgres() { (cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p "$pg_port" "$@"); }

state=$(as_postgres -c "
    SELECT coalesce((SELECT (rolcanlogin AND rolcreatedb AND rolpassword IS NOT NULL)::text
                     FROM pg_authid WHERE rolname = '$DB_USER'), 'missing')
           || ' ' ||
           (EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'))::text") \
    || die "cannot query PostgreSQL as the postgres user"
read -r role_state db_exists <<<"$state"

case $role_state in
    missing)
        log "creating role $DB_USER"
        as_postgres -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'" >/dev/null \
            || die "CREATE ROLE $DB_USER failed"
        ;;
    false)
        log "fixing role $DB_USER (LOGIN, CREATEDB, password)"
        as_postgres -c "ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'" >/dev/null \
            || die "ALTER ROLE $DB_USER failed"
        ;;
esac
if [[ $db_exists != true ]]; then
    log "creating database $DB_NAME"
    as_postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null \
        || die "CREATE DATABASE $DB_NAME failed"
fi

# The real check: a password login over TCP, as the hub and the tests do it.
url="postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$pg_port/$DB_NAME"
if [[ $(psql -X -q -A -t "$url" -c 'SELECT 1' 2>/dev/null) != 1 ]]; then
    die "password login as $DB_USER over 127.0.0.1:$pg_port failed; pg_hba.conf must allow it (Debian's default scram-sha-256 for 127.0.0.1/32 does): $(psql -X "$url" -c 'SELECT 1' 2>&1 | head -n 1)"
fi
log "ready: postgres://$DB_USER:***@127.0.0.1:$pg_port/$DB_NAME, amqp://guest:***@127.0.0.1:5672/%2f"
