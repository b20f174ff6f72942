#!/usr/bin/env bash
# Runs the whole test suite and ends with one line "N passed, M failed".
#
#   tests/run.sh                unit tests, then integration and end-to-end
#                               tests on a real control plane (one per run)
#   tests/run.sh --unit-only    unit tests only
#
# Environment: O (build folder, default build), TQU_TEST_SLACK (widen the
# tests' time bounds; 10 under VALGRIND=1, 4 under SANITIZE), VALGRIND=1 (C tests under
# valgrind; the e2e scripts, which valgrind does not change, are skipped),
# E2E_JOBS=N (e2e scripts N at a time, default 1),
# TESTS="name ..." (only these programs/scripts, by base name), E2E_ONLY="name
# ..." (every C test, and of the e2e scripts only these). Every e2e
# script gets a control plane of its own; the C integration tests share one.
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-build}
mode=${1:-all}
case $O in /*) export TQU_BIN=$O/tianqing-upgrade-controller ;; *) export TQU_BIN=$PWD/$O/tianqing-upgrade-controller ;; esac
export TQU_REPO=$PWD

# Upper time bounds in the C tests are held by the plain pass; under valgrind
# and the sanitizers (which check memory, and run side by side in CI on two
# cores) they and the tests' waits are widened (tests/support/testutil.h).
if [ -z "${TQU_TEST_SLACK:-}" ]; then
  if [ "${VALGRIND:-}" = 1 ]; then export TQU_TEST_SLACK=10
  elif [ -n "${SANITIZE:-}" ] || [[ $O == *san-* ]]; then export TQU_TEST_SLACK=4
  fi
fi

passed=0 failed=0
failures=()
# e2e scripts that need no control plane: run in the unit phase, not below.
no_cluster_e2e="test_argocd_health test_prometheus_rules test_grafana_dashboard test_reasons_documented"

selected() {
  [ -z "${TESTS:-}" ] && return 0
  local t; for t in $TESTS; do [ "$t" = "$1" ] && return 0; done; return 1
}

# run_c BIN: a cmocka program; counts its cases.
run_c() {
  local bin=$1 name out rc p f
  name=$(basename "$bin")
  selected "$name" || return 0
  echo "=== $name"
  out=$(mktemp)
  if [ "${VALGRIND:-}" = 1 ]; then
    valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
      --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
      --track-fds=no --child-silent-after-fork=yes "$bin" 2>&1 | tee "$out"
  else
    "$bin" 2>&1 | tee "$out"
  fi
  rc=${PIPESTATUS[0]}
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n1)
  p=${p:-0} f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crash, leak or valgrind error
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("$name (exit $rc)")
  rm -f "$out"
}

# The C integration programs, in order (they share one control plane).
run_integration() {
  local src
  for src in tests/integration/test_*.c; do
    [ -e "$src" ] || continue
    run_c "$O/tests/$(basename "$src" .c)"
  done
}

# run_sh SCRIPT: an end-to-end script whose last line is "N passed, M failed",
# in a control plane of its own (scripts change cluster-wide objects, so
# they must not see each other's leftovers).
# run_sh SCRIPT --no-cluster: the same without a control plane.
run_sh() {
  local sh=$1 name out rc p f line
  name=$(basename "$sh" .sh)
  selected "$name" || return 0
  echo "=== $name"
  local t_start
  t_start=$(date +%s)
  out=$(mktemp)
  if [ -n "${TQU_CLUSTER_DIR:-}" ] || [ "${2:-}" = --no-cluster ]; then
    bash "$sh" 2>&1 | tee "$out"
  else
    tests/cluster/with-cluster.sh bash "$sh" 2>&1 | tee "$out"
  fi
  rc=${PIPESTATUS[0]}
  echo "# $name took $(( $(date +%s) - t_start )) s"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
  f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("$name (exit $rc)")
  rm -f "$out"
}

# run_e2e_all SCRIPT...: the e2e scripts, E2E_JOBS (default 1) at a time,
# each on its own control plane; a script's output is printed whole when it
# ends (in the order they end when E2E_JOBS > 1).
run_e2e_all() {
  local jobs=${E2E_JOBS:-1} dir sh n=0 r
  if ! [[ $jobs =~ ^[1-9][0-9]*$ ]] || [ "$jobs" -eq 1 ]; then
    for sh in "$@"; do run_sh "$sh"; done
    return
  fi
  dir=$(mktemp -d)
  for sh in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    n=$((n + 1))
    ( passed=0 failed=0 failures=()
      run_sh "$sh" > "$dir/$n.out" 2>&1
      { echo "$passed $failed"; printf '%s\n' "${failures[@]}"; } > "$dir/$n.res"
      cat "$dir/$n.out" ) &
  done
  wait
  for ((r = 1; r <= n; r++)); do
    local rp=0 rf=1 more=()
    if [ -s "$dir/$r.res" ]; then
      read -r rp rf < "$dir/$r.res"
      mapfile -t more < <(tail -n +2 "$dir/$r.res" | grep .)
    else
      more=("$(basename "${@:r:1}" .sh) (no result)")
    fi
    passed=$((passed + rp)); failed=$((failed + rf))
    [ ${#more[@]} -gt 0 ] && failures+=("${more[@]}")
  done
  rm -rf "$dir"
}

e2e_list=()
if [ "$mode" != --cluster-part ]; then
  for src in tests/unit/test_*.c; do
    [ -e "$src" ] || continue
    run_c "$O/tests/$(basename "$src" .c)"
  done
  run_sh tests/layers/test_check_layers.sh --no-cluster   # scripts/check-layers.sh
  # (not under VALGRIND=1, which changes nothing for them; see below)
  [ "${VALGRIND:-}" = 1 ] || for t in $no_cluster_e2e; do run_sh "tests/e2e/$t.sh" --no-cluster; done
fi

if [ "$mode" != --unit-only ] && [ "$mode" != --cluster-part ]; then
  # The C integration tests share one control plane (each uses its own
  # namespaces); it is torn down on every exit path by with-cluster.sh.
  if [ -z "${TQU_CLUSTER_DIR:-}" ]; then
    summary=$(mktemp)
    TQU_RUN_SUMMARY=$summary tests/cluster/with-cluster.sh tests/run.sh --cluster-part
    rc=$?
    if [ -s "$summary" ]; then
      read -r cp cf < "$summary"
      passed=$((passed + cp)); failed=$((failed + cf))
      mapfile -t more < <(tail -n +2 "$summary" | grep .)
      failures+=("${more[@]}")
    else
      failed=$((failed + 1)); failures+=("control plane (exit $rc)")
    fi
    rm -f "$summary"
  else
    run_integration
  fi
  # Under VALGRIND=1 only the C programs change (valgrind wraps them);
  # the e2e scripts would repeat the plain run, so they are left out.
  if [ "${VALGRIND:-}" != 1 ]; then
    for sh in tests/e2e/test_*.sh; do
      [ -e "$sh" ] || continue
      case " $no_cluster_e2e " in *" $(basename "$sh" .sh) "*) continue ;; esac
      # E2E_ONLY="name ...": of the e2e scripts, only these (the C tests all run)
      if [ -n "${E2E_ONLY:-}" ]; then
        case " $E2E_ONLY " in *" $(basename "$sh" .sh) "*) ;; *) continue ;; esac
      fi
      e2e_list+=("$sh")
    done
    run_e2e_all "${e2e_list[@]}"
  fi
fi
if [ "$mode" = --cluster-part ]; then
  run_integration
  { echo "$passed $failed"; printf '%s\n' "${failures[@]}"; } > "${TQU_RUN_SUMMARY:-/dev/null}"
  exit 0
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
