#!/usr/bin/env bash
# test_grafana_dashboard.sh - manifests/grafana/tianqing-upgrade-controller.json:
# valid JSON (jq) of a Grafana dashboard's shape, every query valid PromQL
# (promtool check rules on the queries as recording rules), every metric a
# query names exported by controller/runtime/metrics.c, and the panels the
# operators need present. Then broken copies must be caught.
#
# Needs no build and no control plane (tests/run.sh runs it in the unit
# phase); needs jq and promtool (scripts/install-deps.sh). Ends with
# "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
dash=$repo/manifests/grafana/tianqing-upgrade-controller.json
metrics_c=$repo/controller/runtime/metrics.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v jq >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  e2e_not_ok "jq and promtool are installed" "run scripts/install-deps.sh"
  e2e_summary; exit 1
fi

# Every query of a dashboard: the panels' targets and the variables'.
queries() {
  jq -r '[.panels[] | (.targets // [])[] | .expr],
         [.templating.list[] | select(.type == "query") | .definition] | .[]' "$1"
}

# shape FILE: the structure Grafana needs, one line per problem.
shape() {
  jq -r '
    def problem(c; m): if c then empty else m end;
    problem(.uid | type == "string" and length > 0; "no uid"),
    problem(.title | type == "string" and length > 0; "no title"),
    problem(.schemaVersion | type == "number"; "no schemaVersion"),
    problem(any(.templating.list[]; .type == "datasource" and .name == "datasource" and .query == "prometheus");
            "no Prometheus data source variable"),
    problem((.panels | length) > 0; "no panels"),
    problem(([.panels[].id] | length) == ([.panels[].id] | unique | length); "panel ids repeat"),
    (.panels[] | . as $p |
      problem(.gridPos.w > 0 and .gridPos.h > 0 and .gridPos.x + .gridPos.w <= 24;
              "panel \($p.id): gridPos outside the 24 columns"),
      (select(.type != "row") |
        problem((.targets | length) > 0; "panel \($p.id) (\($p.title)): no query"),
        problem(([.targets[].refId] | length) == ([.targets[].refId] | unique | length);
                "panel \($p.id): refIds repeat"),
        (.targets[] | problem(.datasource.uid == "${datasource}" and (.expr | length) > 0;
                "panel \($p.id) \(.refId): no expr or not on ${datasource}"))))' "$1"
}

# unknown_metrics FILE: tqu_/process_ metrics queried but not in metrics.c
# (a histogram's _bucket/_sum/_count are its family's).
unknown_metrics() {
  local m
  for m in $(queries "$1" | grep -oE '\b(tqu|process)_[a-z_]+' | sort -u); do
    m=$(echo "$m" | sed -E 's/_(bucket|sum|count)$//')
    grep -q "\"$m\"" "$metrics_c" || echo "$m"
  done | sort -u
}

# promql FILE: the queries as recording rules (Grafana's variables given
# values, label_values(SELECTOR, LABEL) as its SELECTOR), checked by promtool.
promql() {
  local i=0 q
  {
    echo 'groups:'
    echo '  - name: dashboard'
    echo '    rules:'
    while IFS= read -r q; do
      i=$((i + 1))
      q=${q//\$__rate_interval/5m}; q=${q//\$__range/1h}
      q=${q//\$job/.+}; q=${q//\$instance/.+}
      q=$(sed -E 's/^label_values\((.*), *[a-z_]+\)$/\1/' <<< "$q")   # Grafana's, not PromQL
      echo "      - record: dashboard:query_$i"
      printf '        expr: %s\n' "$(jq -Rn --arg q "$q" '$q')"
    done < <(queries "$1")
  } > "$tmp/rules.yaml"
  promtool check rules "$tmp/rules.yaml"
}

# --- the dashboard as it is ---------------------------------------------
e2e_check "the dashboard is valid JSON" jq empty "$dash"
e2e_eq "the dashboard has Grafana's shape" "" "$(shape "$dash" 2>&1)"
e2e_check "every query is valid PromQL (promtool check rules)" promql "$dash"
e2e_eq "every metric queried is exported by metrics.c" "" "$(unknown_metrics "$dash")"
for m in tqu_upgrades tqu_reconcile_total tqu_reconcile_duration_seconds_bucket \
         tqu_api_requests_total tqu_workqueue_depth tqu_leader tqu_watch_restarts_total; do
  e2e_match "a panel queries $m" "\\b$m\\{" "$(queries "$dash")"
done
e2e_match "resources by phase are shown by phase" 'by \(phase\) \(tqu_upgrades' "$(queries "$dash")"
e2e_match "API requests are shown by code" 'by \(code\) \(rate\(tqu_api_requests_total' "$(queries "$dash")"

# --- broken copies must be caught ---------------------------------------
sed 's/tqu_workqueue_depth{/tqu_work_queue_depth{/' "$dash" > "$tmp/b1.json"
e2e_eq "a copy querying a metric metrics.c lacks is caught" "tqu_work_queue_depth" "$(unknown_metrics "$tmp/b1.json")"
sed 's/sum by (code) (rate(/sum by (code) (rate((/' "$dash" > "$tmp/b2.json"
e2e_check_fails "a copy with a PromQL syntax error is caught" promql "$tmp/b2.json"
sed '0,/"refId": "B"/s//"refId": "A"/' "$dash" > "$tmp/b3.json"
e2e_match "a copy with a repeated refId is caught" 'refIds repeat' "$(shape "$tmp/b3.json")"
head -c -3 "$dash" > "$tmp/b4.json"
e2e_check_fails "a truncated copy is not valid JSON" jq empty "$tmp/b4.json"

e2e_summary
exit $?
