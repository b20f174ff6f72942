#!/usr/bin/env bash
# test_metrics_promtool.sh - the controller's /metrics, scraped with curl
# while it runs against the test control plane (--leader-elect, two paused
# TianqingUpgrades, so every family has samples), must pass
# `promtool check metrics` with nothing reported (a lint warning fails
# too), and must export every metric that manifests/prometheus/rules.yaml
# and the Grafana dashboard query (the workflows' counters too: they are
# shown from the start, before their first count).
# Also checks that promtool does report a faulty exposition, so a silent
# promtool cannot pass this test. About 10 s.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
e2e_require_cluster
: "${TQU_BIN:?TQU_BIN is set by tests/run.sh}"
tmp=$(mktemp -d)
# shellcheck source-path=SCRIPTDIR source=runtime_lib.sh
. "$here/runtime_lib.sh"
trap rt_cleanup EXIT

if ! command -v promtool >/dev/null 2>&1; then
  e2e_not_ok "promtool is installed" "run scripts/install-deps.sh (Debian's prometheus)"
  e2e_summary; exit 1
fi

ns=metrics-$$
rt_namespace "$ns"
rt_tqu "$ns" m1
rt_tqu "$ns" m2
rt_start c1 "$TQU_KUBECONFIG_CERT" --namespace "$ns" --leader-elect --leader-election-namespace "$ns"
port=$(rt_port c1) || { e2e_not_ok "the controller serves /metrics" "$(rt_dump c1)"; e2e_summary; exit 1; }

# The phase counts are refreshed every few seconds: wait for both resources.
scrape() { curl -fsS "http://127.0.0.1:$port/metrics" > "$tmp/metrics.txt"; }
if e2e_eventually 20 eval 'scrape && grep -qx "tqu_upgrades{phase=\"Paused\"} 2" "$tmp/metrics.txt"'; then
  e2e_ok "/metrics counts the two paused resources"
else
  e2e_not_ok "/metrics counts the two paused resources" "$(grep '^tqu_upgrades' "$tmp/metrics.txt" 2>/dev/null)" "$(rt_dump c1)"
fi
if e2e_eventually 10 eval 'scrape && grep -qx "tqu_leader 1" "$tmp/metrics.txt"'; then
  e2e_ok "/metrics shows the replica leading"
else
  e2e_not_ok "/metrics shows the replica leading" "$(grep '^tqu_leader' "$tmp/metrics.txt")"
fi

promtool check metrics < "$tmp/metrics.txt" > "$tmp/promtool.out" 2>&1
rc=$?
e2e_eq "promtool check metrics: exit 0" 0 "$rc"
e2e_eq "promtool check metrics: nothing reported" "" "$(cat "$tmp/promtool.out")"

# Every metric the alerts and the dashboard query is in the scrape.
families=$(sed -n 's/^# TYPE \([^ ]*\) .*/\1/p' "$tmp/metrics.txt")
missing=()
for m in $( { grep -E '^ +expr:' "$repo/manifests/prometheus/rules.yaml"
              jq -r '.panels[] | (.targets // [])[] | .expr' "$repo/manifests/grafana/tianqing-upgrade-controller.json"
            } | grep -oE '\b(tqu|process)_[a-z_]+' | sort -u); do
  f=$(echo "$m" | sed -E 's/_(bucket|sum|count)$//')
  grep -qx "$f" <<< "$families" || missing+=("$m")
done
e2e_eq "every metric the rules and the dashboard query is exported" "" "${missing[*]}"

# promtool must object to a faulty exposition: a counter without _total.
sed 's/tqu_leader_transitions_total/tqu_leader_transitions/g' "$tmp/metrics.txt" > "$tmp/bad.txt"
promtool check metrics < "$tmp/bad.txt" > "$tmp/bad.out" 2>&1
e2e_match "promtool reports a counter without _total" 'tqu_leader_transitions.*_total' "$(cat "$tmp/bad.out")"

e2e_summary
exit $?
