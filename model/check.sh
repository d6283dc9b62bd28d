#!/usr/bin/env bash
# Checks the model of the lock protocol (model/locks.pml, design/model.md) with spin.
#
#   model/check.sh [ci|full]     every case of that set (default: ci); exit 0 iff each case
#                                passes and each negative control gives its counterexample
#   model/check.sh list [SET]    the case names of a set
#   model/check.sh case NAME     one case
#   model/check.sh tools         install spin when missing (and possible); exit 2 when unavailable
#
# Each case prints one line:
#   RESULT <name> <ok|FAILED> <verdict> states=<n> transitions=<n> depth=<n> seconds=<s>
# where the verdict is "pass" or the kind of counterexample found: fencing, lost-commit,
# mutual-exclusion, deadlock, no-termination, bound (more acquisitions than the model allows),
# incomplete (the search did not finish: memory or depth). A case expects "pass", a control the
# kind of counterexample it was written to produce.
#
# Needs spin (Debian: apt-get install -y spin; installed here when missing and possible) and a
# C compiler. MODEL_MEMLIM_MB caps the memory of one search (default 1500; 3000 for full).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODEL="${HERE}/locks.pml"
MEMLIM="${MODEL_MEMLIM_MB:-1500}"
OPT="-O0"

# name | set | mode | expected verdict | spin defines
# mode: safety (exhaustive), bitstate (safety by a 512 MB bit-state search: for the cases too big
# to store every state, it may miss a few; pan's "hash factor" says how well it covered), liveness.
CASES="
scoped|ci full|safety|pass|-DW0=2 -DGW=0 -DLOCK_TIMEOUTS
paths|ci full|safety|pass|-DW0=1 -DGW=1 -DLOCK_TIMEOUTS
deadlock|ci full|safety|pass|-DW0=1 -DW1=1 -DGW=1 -DEXPIRE=0 -DFORCE=0
liveness|ci|liveness|pass|-DW0=1 -DGW=1 -DEXPIRE=0 -DFORCE=0
renewals|ci|safety|pass|-DW0=2 -DGW=0 -DRENEWALS -DKILL=0 -DEXPIRE=0
control-no-confirm|ci full|safety|fencing|-DNO_CONFIRM -DW0=2 -DGW=0
control-no-cas|ci full|safety|lost-commit|-DNO_CAS -DW0=2 -DGW=0
control-old-confirm-inflight|ci full|safety|fencing|-DOLD_CONFIRM -DRENEWALS -DFAULTS=0 -DW0=2 -DGW=0
control-old-confirm-failed|ci full|safety|fencing|-DOLD_CONFIRM -DW0=2 -DGW=0
control-no-recheck|ci full|safety|mutual-exclusion|-DNO_RECHECK -DW0=1 -DGW=1
control-no-drain|ci full|safety|mutual-exclusion|-DNO_DRAIN -DW0=1 -DGW=1
control-blind-takeover|ci full|safety|mutual-exclusion|-DBLIND_TAKEOVER -DW0=3 -DGW=0
control-hold-and-wait|ci full|safety|deadlock|-DHOLD_AND_WAIT -DW0=1 -DGW=1 -DEXPIRE=0 -DFORCE=0
control-hold-and-wait-liveness|ci full|liveness|no-termination|-DHOLD_AND_WAIT -DW0=1 -DGW=1 -DEXPIRE=0 -DFORCE=0
scoped-3-expiry|full|safety|pass|-DW0=3 -DGW=0 -DKILL=0 -DFAULTS=0 -DLOCK_TIMEOUTS
scoped-3-faults|full|safety|pass|-DW0=3 -DGW=0 -DEXPIRE=0 -DFORCE=0 -DLOCK_TIMEOUTS
paths-3-expiry|full|bitstate|pass|-DW0=2 -DGW=1 -DKILL=0 -DFAULTS=0 -DLOCK_TIMEOUTS
paths-3-faults|full|safety|pass|-DW0=2 -DGW=1 -DEXPIRE=0 -DFORCE=0 -DLOCK_TIMEOUTS
drain-3-expiry|full|safety|pass|-DW0=1 -DW1=1 -DGW=1 -DKILL=0 -DFAULTS=0 -DLOCK_TIMEOUTS
drain-3-faults|full|safety|pass|-DW0=1 -DW1=1 -DGW=1 -DEXPIRE=0 -DFORCE=0 -DLOCK_TIMEOUTS
renewals-scoped|full|safety|pass|-DW0=2 -DGW=0 -DRENEWALS -DLOCK_TIMEOUTS
renewals-paths|full|safety|pass|-DW0=1 -DGW=1 -DRENEWALS -DLOCK_TIMEOUTS
liveness-faults|full|liveness|pass|-DW0=1 -DGW=1
liveness-3|full|liveness|pass|-DW0=1 -DW1=1 -DGW=1 -DEXPIRE=0 -DFORCE=0
"

die() {
  echo "model/check.sh: $*" >&2
  exit 2
}

ensure_tools() {
  if ! command -v spin >/dev/null 2>&1; then
    local sudo=""
    if [[ "$(id -u)" != 0 ]]; then
      if sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
    fi
    if [[ "$sudo" != none ]] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing spin (apt-get install -y spin)" >&2
      $sudo apt-get install -y -q spin >/dev/null 2>&1 ||
        { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q spin >/dev/null 2>&1; }
    fi
    command -v spin >/dev/null 2>&1 ||
      die "spin is not installed and could not be installed here; install it (Debian/Ubuntu: apt-get install -y spin) and rerun"
  fi
  command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 ||
    die "spin needs a C compiler; install one (Debian/Ubuntu: apt-get install -y gcc) and rerun"
}

case_line() {
  local name="$1" line
  line="$(grep -E "^${name}\|" <<<"$CASES")" || die "no case named ${name}; see model/check.sh list full"
  echo "$line"
}

list_cases() {
  local set="${1:-ci}"
  while IFS='|' read -r name sets _; do
    [[ -z "$name" ]] && continue
    [[ " $sets " == *" $set "* ]] && echo "$name"
  done <<<"$CASES"
}

# The kind of counterexample pan reported, or "pass" / "incomplete".
verdict_of() {
  local out="$1"
  if grep -q "^pan:1: assertion violated" <<<"$out"; then
    if grep -q "assertion violated  *!(fenced" <<<"$out"; then echo fencing
    elif grep -q "assertion violated (head\[" <<<"$out"; then echo lost-commit
    elif grep -q "assertion violated ((q==_pid)" <<<"$out"; then echo mutual-exclusion
    elif grep -q "assertion violated ((a<" <<<"$out"; then echo bound
    else echo assertion; fi
  elif grep -q "^pan:1: invalid end state" <<<"$out"; then echo deadlock
  elif grep -q "^pan:1: acceptance cycle" <<<"$out"; then echo no-termination
  elif grep -qE "reached -DMEMLIM bound|max search depth too small|out of memory" <<<"$out"; then
    echo incomplete
  elif grep -qE "errors: 0" <<<"$out"; then echo pass
  else echo incomplete; fi
}

run_case() {
  local name="$1" line mode expect defines dir out rc verdict states transitions depth hashfactor secs status
  line="$(case_line "$name")" || exit 2
  local sets
  IFS='|' read -r _ sets mode expect defines <<<"$line"
  # A case of the full set only is a long search: compiled optimised, with more memory.
  local OPT="$OPT" MEMLIM="$MEMLIM"
  if [[ " $sets " != *" ci "* ]]; then
    OPT="-O2"
    MEMLIM="${MODEL_MEMLIM_MB:-3000}"
  fi
  dir="$(mktemp -d "${TMPDIR:-/tmp}/modelsync-spin.XXXXXX")" || die "cannot create a temporary directory"
  local start=$SECONDS
  (
    cd "$dir" || exit 1
    # A small search is quicker compiled without optimisation; a long one is not.
    local ccdefs="${OPT} -DMEMLIM=${MEMLIM} -DCOLLAPSE" panflags="-m100000"
    if [[ "$mode" == liveness ]]; then
      defines="$defines -DLIVENESS"
      ccdefs="$ccdefs -DNFAIR=3" # weak fairness over up to 8 processes
      panflags="$panflags -a -f"
    elif [[ "$mode" == bitstate ]]; then
      ccdefs="${OPT} -DSAFETY -DBITSTATE"
      panflags="$panflags -w32 -k3"
    else
      ccdefs="$ccdefs -DSAFETY"
    fi
    # shellcheck disable=SC2086
    spin -a $defines "$MODEL" >spin.log 2>&1 || { cat spin.log; exit 1; }
    # shellcheck disable=SC2086
    cc -w $ccdefs -o pan pan.c >cc.log 2>&1 || { cat cc.log; exit 1; }
    # shellcheck disable=SC2086
    ./pan $panflags 2>&1
  ) >"${dir}/out.txt"
  rc=$?
  out="$(cat "${dir}/out.txt")"
  secs=$((SECONDS - start))
  if [[ "$rc" -ne 0 ]] && ! grep -q "errors:" <<<"$out"; then
    echo "$out" | tail -n 20 >&2
    verdict=error
  else
    verdict="$(verdict_of "$out")"
  fi
  states="$(sed -nE 's/^ *([0-9.e+]+) states, stored.*/\1/p' <<<"$out" | head -n 1)"
  transitions="$(sed -nE 's/^ *([0-9.e+]+) transitions.*/\1/p' <<<"$out" | head -n 1)"
  depth="$(sed -nE 's/.*depth reached ([0-9]+).*/\1/p' <<<"$out" | head -n 1)"
  hashfactor="$(sed -nE 's/^hash factor: ([0-9.e+]+).*/\1/p' <<<"$out" | head -n 1)"
  status=ok
  [[ "$verdict" == "$expect" ]] || status=FAILED
  if [[ "$status" == FAILED && "$verdict" != pass && "$verdict" != incomplete ]]; then
    # Keep what explains the counterexample.
    grep -E "^pan:1:" <<<"$out" | head -n 3 >&2
    echo "(counterexample kept in ${dir}; replay: cd ${dir} && spin -t -p ${defines} ${MODEL})" >&2
  else
    rm -rf "$dir"
  fi
  echo "RESULT ${name} ${status} ${verdict} states=${states:-0} transitions=${transitions:-0}" \
    "depth=${depth:-0} seconds=${secs} expected=${expect} search=${mode}${hashfactor:+ hashfactor=${hashfactor}}"
  [[ "$status" == ok ]]
}

cmd="${1:-ci}"
case "$cmd" in
list)
  list_cases "${2:-ci}"
  ;;
tools)
  ensure_tools
  ;;
case)
  [[ $# -eq 2 ]] || die "usage: model/check.sh case NAME"
  ensure_tools
  run_case "$2"
  ;;
ci | full)
  if [[ "$cmd" == full ]]; then
    OPT="-O2"
    MEMLIM="${MODEL_MEMLIM_MB:-3000}"
  fi
  ensure_tools
  failed=0
  total=0
  for name in $(list_cases "$cmd"); do
    total=$((total + 1))
    run_case "$name" || failed=$((failed + 1))
  done
  echo "model check (${cmd}): $((total - failed)) of ${total} cases as expected"
  [[ "$failed" -eq 0 ]]
  ;;
*)
  die "usage: model/check.sh [ci|full|list [SET]|case NAME|tools]"
  ;;
esac
