#!/usr/bin/env bash
# Starts and stops the local services the tests and benchmarks use.
#
#   eval "$(scripts/services.sh start)"   # start moto (S3), Azurite, PostgreSQL 15 and PgBouncer
#   scripts/services.sh status            # are they running, where
#   scripts/services.sh stop              # stop them
#
# `start` picks a free loopback port, waits until the server answers, and
# prints the variables the tests read, as `export` lines:
#   MODELSYNC_TEST_S3_ENDPOINT  the endpoint, e.g. http://127.0.0.1:40123
#   MODELSYNC_TEST_AZURE_CONNECTION_STRING  Azurite's (see "Azurite" below)
# Any access key works with moto; the tests pass their own.
#
# PostgreSQL 15 and PgBouncer (Debian packages postgresql-15 and pgbouncer,
# installed with apt-get when missing): `initdb` in a fresh directory under
# $STATE/pg/postgres (removed by `stop`), a free loopback port, trust auth, and
# PgBouncer in transaction pooling mode in front of it. Both run as the
# `postgres` user when this script runs as root (neither runs as root).
#   MODELSYNC_TEST_PG_URL         e.g. postgres://postgres@127.0.0.1:40124/postgres
#   MODELSYNC_TEST_PGBOUNCER_URL  the same database through PgBouncer
# Members of the role modelsync_password_auth log in with scram-sha-256 (a
# test makes such a role to see a wrong password refused); every other role
# is trusted.
#
# The server is moto 5.2 (moto before 5.2 ignores If-Match on PUT and DELETE),
# found in this order; no package host is named here:
#   1. ../shared/vendor/python3-moto_5.2.4-2_all.deb beside the project, when
#      present (SHA-256 checked);
#   2. else `apt-get download python3-moto=5.2.4-2` from the Debian mirror this
#      machine's apt already uses (read from /etc/apt/sources.list and
#      /etc/apt/sources.list.d/*.sources), with the unstable suite `sid`:
#      Debian 12 has no moto package. The sources list, package lists and
#      cache live under $STATE/apt, so the system's apt state is untouched
#      (SHA-256 checked);
#   3. else `pip install 'moto[server]>=5.2'` into a virtual environment under
#      $STATE/venv, from pip's own configured index, as moto's users install it.
# The .deb is pure Python: it is unpacked, not installed, and run with Debian
# 12's /usr/bin/python3 and the Python modules below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${MODELSYNC_SERVICES_DIR:-${ROOT}/.services}"
MOTO_DEB="python3-moto_5.2.4-2_all.deb"
MOTO_SHA256="6acc0aba260822c405b74ee3c8e8d27194e8e8535d3b4445bfc376855030c39c"
MOTO_VERSION="5.2.4-2"
PY_DEPS=(python3-boto3 python3-flask python3-flask-cors python3-werkzeug python3-responses
  python3-xmltodict python3-cryptography python3-requests python3-dateutil python3-jinja2)

say() { echo "services: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (run it yourself, then retry)"
  fi
}

# Debian's Python modules moto needs; installed once with apt-get.
ensure_python_deps() {
  if /usr/bin/python3 -c 'import boto3, flask, flask_cors, werkzeug, responses, xmltodict, cryptography, requests, dateutil, jinja2' 2>/dev/null; then
    return
  fi
  say "installing moto's Python dependencies with apt-get"
  as_root apt-get install -y --no-install-recommends "${PY_DEPS[@]}" >&2 ||
    { as_root apt-get update >&2 && as_root apt-get install -y --no-install-recommends "${PY_DEPS[@]}" >&2; } ||
    die "apt-get could not install ${PY_DEPS[*]}"
}

# The Debian mirror this machine's apt uses (not a security mirror), from
# its one-line or deb822 sources; empty when there is none.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
  done
} 2>/dev/null

first_debian_mirror() {
  debian_mirror | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1
}

# Downloads the moto .deb with apt-get from the unstable suite of this
# machine's Debian mirror, with apt state of its own under $STATE/apt.
apt_download_moto() {
  local deb="$1" mirror apt keyring
  command -v apt-get >/dev/null || return 1
  mirror="$(first_debian_mirror)"
  [[ -n "$mirror" ]] || { say "no Debian mirror in /etc/apt/sources.list{,.d}"; return 1; }
  apt="${STATE}/apt"
  mkdir -p "${apt}/lists/partial" "${apt}/cache/archives/partial" "${apt}/sources.list.d" "${apt}/download"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [[ -f "$keyring" ]]; then
    echo "deb [signed-by=${keyring}] ${mirror} sid main" >"${apt}/sources.list"
  else
    echo "deb ${mirror} sid main" >"${apt}/sources.list"
  fi
  local opts=(-o "Dir::Etc::sourcelist=${apt}/sources.list" -o "Dir::Etc::sourceparts=${apt}/sources.list.d"
    -o "Dir::State::Lists=${apt}/lists" -o "Dir::Cache=${apt}/cache" -o "APT::Sandbox::User=root")
  say "downloading python3-moto=${MOTO_VERSION} with apt-get from the sid suite of ${mirror}"
  apt-get "${opts[@]}" -qq update >&2 || return 1
  (cd "${apt}/download" && apt-get "${opts[@]}" -qq download "python3-moto=${MOTO_VERSION}" >&2) || return 1
  mv "${apt}/download/${MOTO_DEB}" "$deb"
  rm -rf "${apt}/lists" "${apt}/cache" # 20+ MB of sid package lists, needed no more
}

# moto from pip into $STATE/venv: the way its users install it.
pip_install_moto() {
  local venv="${STATE}/venv"
  if [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -c 'import moto.server' 2>/dev/null; then
    return
  fi
  say "installing moto[server]>=5.2 with pip into ${venv}"
  /usr/bin/python3 -m venv "$venv" >&2 || die "python3 -m venv failed (install python3-venv)"
  "${venv}/bin/pip" install -q 'moto[server]>=5.2' >&2 || die "pip could not install moto[server]>=5.2"
}

# Sets MOTO_PYTHON and MOTO_PYTHONPATH: moto from the vendored or apt .deb
# (unpacked under $STATE/moto), else from pip in $STATE/venv.
ensure_moto() {
  local dir="${STATE}/moto"
  mkdir -p "$STATE"
  if [[ -x "${STATE}/venv/bin/python" && ! -d "${dir}/usr/lib/python3/dist-packages/moto" ]]; then
    MOTO_PYTHON="${STATE}/venv/bin/python" MOTO_PYTHONPATH=""
    return
  fi
  if [[ ! -d "${dir}/usr/lib/python3/dist-packages/moto" ]]; then
    local deb="${STATE}/${MOTO_DEB}"
    local vendor="${ROOT}/../shared/vendor/${MOTO_DEB}"
    if [[ -f "$vendor" ]]; then
      cp "$vendor" "$deb"
    elif [[ ! -f "$deb" ]] && ! apt_download_moto "$deb"; then
      rm -f "$deb"
      say "apt-get could not download python3-moto=${MOTO_VERSION}; falling back to pip"
      pip_install_moto
      MOTO_PYTHON="${STATE}/venv/bin/python" MOTO_PYTHONPATH=""
      return
    fi
    echo "${MOTO_SHA256}  ${deb}" | sha256sum -c --status ||
      { rm -f "$deb"; die "${MOTO_DEB} does not match its SHA-256; removed it, run again to fetch it again"; }
    rm -rf "${dir}.part"
    dpkg-deb -x "$deb" "${dir}.part"
    mv "${dir}.part" "$dir"
  fi
  ensure_python_deps
  MOTO_PYTHON=/usr/bin/python3 MOTO_PYTHONPATH="${dir}/usr/lib/python3/dist-packages"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running_pid() {
  local pid
  [[ -f "${STATE}/moto.pid" ]] || return 1
  pid="$(cat "${STATE}/moto.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

print_env() {
  echo "export MODELSYNC_TEST_S3_ENDPOINT=$(cat "${STATE}/moto.endpoint")"
}

start() {
  if running_pid >/dev/null; then
    say "moto already runs at $(cat "${STATE}/moto.endpoint")"
    print_env
    return
  fi
  ensure_moto
  local port endpoint pid i
  port="$(free_port)"
  endpoint="http://127.0.0.1:${port}"
  (
    unset AWS_CA_BUNDLE
    cd "$STATE"
    PYTHONPATH="$MOTO_PYTHONPATH" exec "$MOTO_PYTHON" -m moto.server -H 127.0.0.1 -p "$port" \
      >"${STATE}/moto.log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"${STATE}/moto.pid"
  echo "$endpoint" >"${STATE}/moto.endpoint"
  for i in $(seq 1 100); do
    if curl -fs -m 2 -o /dev/null "${endpoint}/moto-api/"; then
      say "moto runs at ${endpoint} (pid ${pid}, log ${STATE}/moto.log)"
      print_env
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "${STATE}/moto.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  die "moto did not start on ${endpoint}; see ${STATE}/moto.log"
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped moto (pid ${pid})"
  fi
  rm -f "${STATE}/moto.pid" "${STATE}/moto.endpoint"
}

status() {
  if running_pid >/dev/null; then
    say "moto runs at $(cat "${STATE}/moto.endpoint")"
    print_env
  else
    say "moto is not running; start it with: eval \"\$(scripts/services.sh start)\""
    return 1
  fi
}

# --- Azurite (Azure Blob Storage emulator) ----------------------------------
# Azurite's blob service only, pinned to the version the tests were written
# against, installed with npm into $STATE/azurite when missing (from npm's own
# configured registry). It keeps everything in memory (--inMemoryPersistence,
# at most 2 GB of blob data), listens on a free loopback port, sends no
# telemetry, and skips its API version check (the SDK speaks a newer version
# than Azurite knows). `start` prints MODELSYNC_TEST_AZURE_CONNECTION_STRING:
# Azurite's well-known development account (public, the same for everyone),
# its BlobEndpoint on the chosen port.
AZURITE_VERSION="3.35.0"
AZURITE_ACCOUNT="devstoreaccount1"
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

azurite_ensure() {
  local dir="${STATE}/azurite"
  if [[ -x "${dir}/node_modules/.bin/azurite-blob" ]] &&
    grep -q "\"version\": \"${AZURITE_VERSION}\"" "${dir}/node_modules/azurite/package.json" 2>/dev/null; then
    return
  fi
  command -v npm >/dev/null || die "npm is needed to install Azurite (install Node.js and npm)"
  mkdir -p "$dir"
  [[ -f "${dir}/package.json" ]] || echo '{"private": true}' >"${dir}/package.json"
  say "installing azurite@${AZURITE_VERSION} with npm into ${dir}"
  npm install --prefix "$dir" --no-fund --no-audit --loglevel=error "azurite@${AZURITE_VERSION}" >&2 ||
    die "npm could not install azurite@${AZURITE_VERSION}"
}

azurite_pid() {
  local pid
  [[ -f "${STATE}/azurite.pid" ]] || return 1
  pid="$(cat "${STATE}/azurite.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

azurite_print_env() {
  local endpoint
  endpoint="$(cat "${STATE}/azurite.endpoint")"
  echo "export MODELSYNC_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};'"
}

azurite_start() {
  if azurite_pid >/dev/null; then
    say "azurite already runs at $(cat "${STATE}/azurite.endpoint")"
    azurite_print_env
    return
  fi
  azurite_ensure
  local port endpoint pid code
  port="$(free_port)"
  endpoint="http://127.0.0.1:${port}/${AZURITE_ACCOUNT}"
  (
    cd "$STATE"
    exec "${STATE}/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
      --inMemoryPersistence --extentMemoryLimit 2048 --skipApiVersionCheck --disableTelemetry \
      --silent >"${STATE}/azurite.log" 2>&1
  ) &
  pid=$!
  echo "$pid" >"${STATE}/azurite.pid"
  echo "$endpoint" >"${STATE}/azurite.endpoint"
  for _ in $(seq 1 100); do
    # Any HTTP answer (403 to an unsigned listing) means it listens.
    code="$(curl -s -m 2 -o /dev/null -w '%{http_code}' "${endpoint}?comp=list" || true)"
    if [[ -n "$code" && "$code" != "000" ]]; then
      say "azurite runs at ${endpoint} (pid ${pid}, log ${STATE}/azurite.log)"
      azurite_print_env
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "${STATE}/azurite.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  die "azurite did not start on ${endpoint}; see ${STATE}/azurite.log"
}

azurite_stop() {
  local pid
  if pid="$(azurite_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped azurite (pid ${pid})"
  fi
  rm -f "${STATE}/azurite.pid" "${STATE}/azurite.endpoint"
}

azurite_status() {
  if azurite_pid >/dev/null; then
    say "azurite runs at $(cat "${STATE}/azurite.endpoint")"
    azurite_print_env
  else
    say "azurite is not running; start it with: eval \"\$(scripts/services.sh start)\""
    return 1
  fi
}

# --- PostgreSQL 15 and PgBouncer ----------------------------------------------
PG_BIN=/usr/lib/postgresql/15/bin
PG_PASSWORD_GROUP=modelsync_password_auth
# Where PostgreSQL and PgBouncer keep their files: $STATE/pg, or a temporary
# directory under /tmp when the postgres user cannot reach $STATE (its path
# is then kept in $STATE/pg.dir).
PG_BASE="$(cat "${STATE}/pg.dir" 2>/dev/null || echo "${STATE}/pg")"
PG_DIR="${PG_BASE}/postgres"
PGB_DIR="${PG_BASE}/pgbouncer"

# Runs a command as the postgres user when root (initdb and pgbouncer refuse root).
as_pg() {
  if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Debian's postgresql-15 and pgbouncer, installed once with apt-get.
ensure_pg_packages() {
  local missing=()
  [[ -x "${PG_BIN}/initdb" ]] || missing+=(postgresql-15)
  command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
  [[ ${#missing[@]} -eq 0 ]] && return
  say "installing ${missing[*]} with apt-get"
  as_root apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { as_root apt-get update >&2 && as_root apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
    die "apt-get could not install ${missing[*]}"
}

pg_running() {
  [[ -f "${PG_DIR}/url" && -d "${PG_DIR}/data" ]] &&
    as_pg "${PG_BIN}/pg_ctl" -D "${PG_DIR}/data" status >/dev/null 2>&1
}

pg_start() {
  if pg_running; then
    say "PostgreSQL already runs at $(cat "${PG_DIR}/url")"
    echo "export MODELSYNC_TEST_PG_URL=$(cat "${PG_DIR}/url")"
    return
  fi
  ensure_pg_packages
  local port data url
  rm -rf "$PG_DIR"
  mkdir -p "$PG_DIR"
  if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$PG_DIR"; fi
  if ! as_pg test -w "$PG_DIR"; then
    rm -rf "${STATE}/pg"
    PG_BASE="$(mktemp -d /tmp/modelsync-pg.XXXXXX)"
    chmod 755 "$PG_BASE"
    echo "$PG_BASE" >"${STATE}/pg.dir"
    PG_DIR="${PG_BASE}/postgres" PGB_DIR="${PG_BASE}/pgbouncer"
    mkdir -p "$PG_DIR"
    if [[ "$(id -u)" -eq 0 ]]; then chown postgres: "$PG_DIR"; fi
    say "the postgres user cannot reach ${STATE}: using ${PG_BASE}"
  fi
  data="${PG_DIR}/data"
  as_pg "${PG_BIN}/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"${PG_DIR}/initdb.log" 2>&1 ||
    { tail -n 20 "${PG_DIR}/initdb.log" >&2; die "initdb failed; see ${PG_DIR}/initdb.log"; }
  port="$(free_port)"
  as_pg tee -a "${data}/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${data}'
max_connections = 300
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_stat_statements'
password_encryption = scram-sha-256
CONF
  as_pg tee "${data}/pg_hba.conf" >/dev/null <<HBA
local all all trust
host all +${PG_PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA
  as_pg "${PG_BIN}/pg_ctl" -D "$data" -l "${PG_DIR}/postgres.log" -w -t 60 start >&2 ||
    { tail -n 20 "${PG_DIR}/postgres.log" >&2; die "PostgreSQL did not start; see ${PG_DIR}/postgres.log"; }
  url="postgres://postgres@127.0.0.1:${port}/postgres"
  psql -X -q -v ON_ERROR_STOP=1 "$url" -c "CREATE ROLE ${PG_PASSWORD_GROUP} NOLOGIN" \
    -c "CREATE EXTENSION pg_stat_statements" >&2 || die "could not prepare PostgreSQL at ${url}"
  echo "$url" >"${PG_DIR}/url"
  say "PostgreSQL 15 runs at ${url} (data ${data}, log ${PG_DIR}/postgres.log)"
  echo "export MODELSYNC_TEST_PG_URL=${url}"
}

pg_stop() {
  if pg_running; then
    as_pg "${PG_BIN}/pg_ctl" -D "${PG_DIR}/data" -m fast -w stop >&2 || true
    say "stopped PostgreSQL"
  fi
  rm -rf "$PG_DIR"
  if [[ -f "${STATE}/pg.dir" ]]; then rm -rf "$PG_BASE" "${STATE}/pg.dir"; fi
  rmdir "$PG_BASE" 2>/dev/null || true
}

pg_status() {
  if pg_running; then
    say "PostgreSQL runs at $(cat "${PG_DIR}/url")"
    echo "export MODELSYNC_TEST_PG_URL=$(cat "${PG_DIR}/url")"
  else
    say "PostgreSQL is not running; start it with: eval \"\$(scripts/services.sh start)\""
    return 1
  fi
}

pgbouncer_pid() {
  local pid
  [[ -f "${PGB_DIR}/pgbouncer.pid" ]] || return 1
  pid="$(cat "${PGB_DIR}/pgbouncer.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

pgbouncer_start() {
  if pgbouncer_pid >/dev/null && [[ -f "${PGB_DIR}/url" ]]; then
    say "PgBouncer already runs at $(cat "${PGB_DIR}/url")"
    echo "export MODELSYNC_TEST_PGBOUNCER_URL=$(cat "${PGB_DIR}/url")"
    return
  fi
  pg_running || die "PgBouncer needs PostgreSQL: start it first"
  local pg_port port url i
  pg_port="$(sed -E 's/.*:([0-9]+)\/.*/\1/' "${PG_DIR}/url")"
  port="$(free_port)"
  rm -rf "$PGB_DIR"
  mkdir -p "$PGB_DIR"
  echo '"postgres" ""' >"${PGB_DIR}/userlist.txt"
  # Transaction pooling and no ignore_startup_parameters: what modelsync
  # sends must work with PgBouncer's defaults.
  cat >"${PGB_DIR}/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=${pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${PGB_DIR}/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
logfile = ${PGB_DIR}/pgbouncer.log
pidfile = ${PGB_DIR}/pgbouncer.pid
admin_users = postgres
INI
  if [[ "$(id -u)" -eq 0 ]]; then chown -R postgres: "$PGB_DIR"; fi
  as_pg "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)" -d -q "${PGB_DIR}/pgbouncer.ini" >&2 ||
    die "PgBouncer did not start; see ${PGB_DIR}/pgbouncer.log"
  url="postgres://postgres@127.0.0.1:${port}/postgres"
  for i in $(seq 1 100); do
    if psql -X -q -At "$url" -c "SELECT 1" >/dev/null 2>&1; then
      echo "$url" >"${PGB_DIR}/url"
      say "PgBouncer (transaction pooling) runs at ${url} (log ${PGB_DIR}/pgbouncer.log)"
      echo "export MODELSYNC_TEST_PGBOUNCER_URL=${url}"
      return
    fi
    sleep 0.1
  done
  tail -n 20 "${PGB_DIR}/pgbouncer.log" >&2 || true
  die "PgBouncer does not answer at ${url}; see ${PGB_DIR}/pgbouncer.log"
}

pgbouncer_stop() {
  local pid
  if pid="$(pgbouncer_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped PgBouncer (pid ${pid})"
  fi
  rm -rf "$PGB_DIR"
}

pgbouncer_status() {
  if pgbouncer_pid >/dev/null && [[ -f "${PGB_DIR}/url" ]]; then
    say "PgBouncer runs at $(cat "${PGB_DIR}/url")"
    echo "export MODELSYNC_TEST_PGBOUNCER_URL=$(cat "${PGB_DIR}/url")"
  else
    say "PgBouncer is not running; start it with: eval \"\$(scripts/services.sh start)\""
    return 1
  fi
}

case "${1:-}" in
start)
  start
  azurite_start
  pg_start
  pgbouncer_start
  ;;
stop)
  pgbouncer_stop
  pg_stop
  stop
  azurite_stop
  ;;
status)
  rc=0
  status || rc=1
  azurite_status || rc=1
  pg_status || rc=1
  pgbouncer_status || rc=1
  exit "$rc"
  ;;
*)
  echo "usage: scripts/services.sh start|stop|status" >&2
  exit 2
  ;;
esac
