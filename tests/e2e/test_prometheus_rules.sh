#!/usr/bin/env bash
# test_prometheus_rules.sh - manifests/prometheus/: rules.yaml passes
# `promtool check rules` (lint fatal), the PrometheusRule's spec is exactly
# rules.yaml's groups, `promtool test rules tests.yaml` passes and tests
# every alert, and the metrics the rules name are the controller's (each
# documented in rules.yaml). Then broken copies must be caught.
#
# Needs no build and no control plane (tests/run.sh runs it in the unit
# phase); needs promtool (Debian's prometheus) and python3-yaml
# (scripts/install-deps.sh). Ends with "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
dir=$repo/manifests/prometheus
# the runtime's metrics (metrics.c) and the workflows' counters (tqu_counter_family)
metrics_src=$repo/controller
contract="tqu_tuning_drift_corrections_total"   # a workflow's: documented in rules.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! command -v promtool >/dev/null 2>&1 || ! "$py" -c 'import yaml' 2>/dev/null; then
  e2e_not_ok "promtool and python3-yaml are installed" "run scripts/install-deps.sh"
  e2e_summary; exit 1
fi

# same_groups RULES PROMETHEUSRULE: exit 0 when the CR is a PrometheusRule
# whose spec is exactly the rules file (parsed, so layout may differ).
same_groups() {
  "$py" - "$1" "$2" <<'EOF'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
cr = yaml.safe_load(open(sys.argv[2]))
if cr.get("apiVersion") != "monitoring.coreos.com/v1" or cr.get("kind") != "PrometheusRule":
    sys.exit("not a monitoring.coreos.com/v1 PrometheusRule")
if not cr.get("metadata", {}).get("name"):
    sys.exit("no metadata.name")
if cr.get("spec") != rules:
    sys.exit("spec differs from the rules file")
EOF
}

# --- the files as they are ----------------------------------------------
e2e_check "promtool check rules --lint=all --lint-fatal rules.yaml" \
  promtool check rules --lint=all --lint-fatal "$dir/rules.yaml"
e2e_check "prometheusrule.yaml's spec is exactly rules.yaml" \
  same_groups "$dir/rules.yaml" "$dir/prometheusrule.yaml"
e2e_check "promtool test rules tests.yaml" \
  bash -c 'cd "$1" && promtool test rules tests.yaml' _ "$dir"

mapfile -t alerts < <(sed -n 's/^ *- alert: *\([A-Za-z]*\) *$/\1/p' "$dir/rules.yaml")
e2e_eq "rules.yaml has the five alerts" \
  "TianqingUpgradeStalled TianqingUpgradeSlow TianqingTuningDrifted TianqingControllerDown TianqingControllerNoLeader" \
  "${alerts[*]}"
untested=()
for a in "${alerts[@]}"; do
  grep -qE "^ +alertname: $a$" "$dir/tests.yaml" || untested+=("$a")
done
e2e_eq "tests.yaml tests every alert" "" "${untested[*]}"

unknown=()
for m in $(grep -E '^ +expr:' "$dir/rules.yaml" | grep -oE 'tqu_[a-z_]+' | sort -u); do
  grep -rqF --include='*.c' "\"$m\"" "$metrics_src" || unknown+=("$m")
done
e2e_eq "every tqu_ metric in the rules is exported by the controller" "" "${unknown[*]}"
e2e_match "the tuning workflow's counter is documented in rules.yaml" "^#   $contract\{" "$(cat "$dir/rules.yaml")"

# --- broken copies must be caught ---------------------------------------
# broken DESC SED-EXPR CHECK...: CHECK (run in a copy of the folder whose
# rules.yaml has the edit) must fail.
broken() {
  local desc=$1 expr=$2
  shift 2
  rm -rf "$tmp/copy"; cp -r "$dir" "$tmp/copy"
  sed -i "$expr" "$tmp/copy/rules.yaml"
  if cmp -s "$dir/rules.yaml" "$tmp/copy/rules.yaml"; then
    e2e_not_ok "$desc" "the edit '$expr' changed nothing: update this test"; return
  fi
  if (cd "$tmp/copy" && "$@") > "$tmp/bout" 2>&1; then
    e2e_not_ok "$desc" "passed with the edit '$expr'" "$(cat "$tmp/bout")"
  else e2e_ok "$desc"; fi
}
broken "promtool test rules catches a stalled alert that waits 5m" \
  's/^        for: 15m$/        for: 5m/' promtool test rules tests.yaml
broken "promtool test rules catches a down alert on the wrong job" \
  's/up{job="tianqing-upgrade-controller"}/up{job="tianqing"}/' promtool test rules tests.yaml
broken "promtool check rules catches a broken expression" \
  's/> 0$/> /' promtool check rules rules.yaml
broken "a PrometheusRule that differs from rules.yaml is caught" \
  's/severity: warning/severity: info/' same_groups rules.yaml prometheusrule.yaml

e2e_summary
exit $?
