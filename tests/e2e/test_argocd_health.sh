#!/usr/bin/env bash
# test_argocd_health.sh - manifests/argocd/health.lua on Argo CD's own test
# layout (health_test.yaml and testdata/), run under Debian's lua5.1 the way
# Argo CD runs a health check from argocd-cm (tests/e2e/argocd_health.lua):
# every case must give exactly its healthStatus. Then the checks of the
# harness itself: the required cases exist, a broken copy of the script is
# caught, and a script that uses the string library fails as in Argo CD.
#
# Needs no build and no control plane (tests/run.sh runs it in the unit
# phase); needs lua5.1 and python3-yaml (scripts/install-deps.sh). Ends
# with "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
dir=$repo/manifests/argocd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! command -v lua5.1 >/dev/null 2>&1 || ! "$py" -c 'import yaml' 2>/dev/null; then
  e2e_not_ok "lua5.1 and python3-yaml are installed" "run scripts/install-deps.sh"
  e2e_summary; exit 1
fi

# run_cases HEALTH_LUA OUT: the cases of health_test.yaml on HEALTH_LUA
run_cases() {
  lua5.1 "$here/argocd_health.lua" "$1" "$tmp/cases.lua" > "$2" 2>&1
}

# --- the cases ----------------------------------------------------------
if ! "$py" "$here/argocd_cases.py" "$dir/health_test.yaml" > "$tmp/cases.lua" 2> "$tmp/err"; then
  e2e_not_ok "health_test.yaml and testdata/ load" "$(cat "$tmp/err")"
  e2e_summary; exit 1
fi
ncases=$(grep -c '^  {input = ' "$tmp/cases.lua")
run_cases "$dir/health.lua" "$tmp/out"; rc=$?
cat "$tmp/out"
E2E_PASSED=$((E2E_PASSED + $(grep -c '^ok - ' "$tmp/out")))
E2E_FAILED=$((E2E_FAILED + $(grep -c '^not ok - ' "$tmp/out")))
nresults=$(grep -cE '^(not )?ok - ' "$tmp/out")
if [ "$rc" -ne 0 ] || [ "$nresults" -ne "$ncases" ]; then
  e2e_not_ok "the runner reports every one of the $ncases cases" "exit $rc, $nresults results"
fi

# --- the layout ---------------------------------------------------------
for c in no_status unobserved_generation pending waiting paused running blocked failed succeeded; do
  e2e_match "health_test.yaml has the case testdata/$c.yaml" \
    "^ +inputPath: testdata/$c\.yaml$" "$(cat "$dir/health_test.yaml")"
done
unused=()
for f in "$dir"/testdata/*.yaml; do
  grep -qE "^ +inputPath: testdata/$(basename "$f")$" "$dir/health_test.yaml" ||
    unused+=("testdata/$(basename "$f")")
done
e2e_eq "every file in testdata/ is a case of health_test.yaml" "" "${unused[*]}"

# --- the harness can fail -----------------------------------------------
# Each broken copy must fail at least one case.
broken() {   # DESC SED-EXPR
  sed "$2" "$dir/health.lua" > "$tmp/broken.lua"
  if cmp -s "$dir/health.lua" "$tmp/broken.lua"; then
    e2e_not_ok "$1" "the edit '$2' changed nothing: update this test"
    return
  fi
  run_cases "$tmp/broken.lua" "$tmp/bout"
  if grep -q '^not ok - ' "$tmp/bout"; then e2e_ok "$1"
  else e2e_not_ok "$1" "every case passed with the edit '$2'"; fi
}
broken "a copy that reports Stalled as Progressing fails" 's/hs.status = "Degraded"/hs.status = "Progressing"/'
broken "a copy that ignores the observed generation fails" 's/^if stale(status.observedGeneration) then/if false then/'
broken "a copy that calls string.format fails (no string library in Argo CD)" \
  's/^local hs = {}/local hs = {}; local _ = string.format("%s", "x")/'
broken "a copy that calls a string method fails (strings have no methods in Argo CD)" \
  's/^local hs = {}/local hs = {}; local _ = ("x"):upper()/'
broken "a copy returning an unknown status fails" 's/hs.status = "Suspended"/hs.status = "Paused"/'

e2e_summary
exit $?
