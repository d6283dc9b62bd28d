#!/usr/bin/env bash
# Starts and stops the local services the tests and benchmarks use.
#
#   eval "$(scripts/services.sh start)"   # start a local S3 server (moto 5.2)
#   scripts/services.sh status            # is it running, where
#   scripts/services.sh stop              # stop it
#
# `start` picks a free loopback port, waits until the server answers, and
# prints the variables the tests read, as `export` lines:
#   MODELSYNC_TEST_S3_ENDPOINT  the endpoint, e.g. http://127.0.0.1:40123
# Any access key works with moto; the tests pass their own.
#
# The server is moto 5.2.4 from Debian's unstable suite (Debian 12 has no moto
# package, and moto before 5.2 ignores If-Match on PUT and DELETE). It is pure
# Python: the package is unpacked, not installed, and run with Debian 12's
# /usr/bin/python3 and libraries. The .deb comes from ../shared/vendor when
# present, else from deb.debian.org, checked against its SHA-256 either way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${MODELSYNC_SERVICES_DIR:-${ROOT}/.services}"
MOTO_DEB="python3-moto_5.2.4-2_all.deb"
MOTO_SHA256="6acc0aba260822c405b74ee3c8e8d27194e8e8535d3b4445bfc376855030c39c"
MOTO_URL="http://deb.debian.org/debian/pool/main/p/python-moto/${MOTO_DEB}"
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

# The unpacked moto package under $STATE/moto.
ensure_moto() {
  local dir="${STATE}/moto"
  if [[ -d "${dir}/usr/lib/python3/dist-packages/moto" ]]; then return; fi
  mkdir -p "$STATE"
  local deb="${STATE}/${MOTO_DEB}"
  local vendor="${ROOT}/../shared/vendor/${MOTO_DEB}"
  if [[ -f "$vendor" ]]; then
    cp "$vendor" "$deb"
  elif [[ ! -f "$deb" ]]; then
    say "fetching ${MOTO_URL}"
    curl -fsSL --retry 3 -m 300 -o "${deb}.part" "$MOTO_URL" || die "could not download ${MOTO_URL}"
    mv "${deb}.part" "$deb"
  fi
  echo "${MOTO_SHA256}  ${deb}" | sha256sum -c --status ||
    { rm -f "$deb"; die "${MOTO_DEB} does not match its SHA-256; removed it, run again to re-download"; }
  rm -rf "${dir}.part"
  dpkg-deb -x "$deb" "${dir}.part"
  mv "${dir}.part" "$dir"
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
  ensure_python_deps
  ensure_moto
  local port endpoint pid i
  port="$(free_port)"
  endpoint="http://127.0.0.1:${port}"
  (
    unset AWS_CA_BUNDLE
    cd "$STATE"
    PYTHONPATH="${STATE}/moto/usr/lib/python3/dist-packages" \
      exec /usr/bin/python3 -m moto.server -H 127.0.0.1 -p "$port" >"${STATE}/moto.log" 2>&1
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

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
  echo "usage: scripts/services.sh start|stop|status" >&2
  exit 2
  ;;
esac
