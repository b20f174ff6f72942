#!/usr/bin/env bash
# The controller binary under faults of the real control plane, each
# scenario in its own namespace (the controller runs with --namespace):
#
#  1. etcd compacted at its head and the API server restarted while the
#     controller is stopped (SIGSTOP): it lists again, sees the resource
#     created and the one deleted meanwhile, and handles nothing twice.
#  2. The API server killed (kill -9) and started again: the controller
#     recovers by itself, logging each failed list/watch with a delay of
#     0.8 s doubling (+/-20 %, at most 30 s), and handles a resource created
#     afterwards within seconds.
#  3. Idle for 60 s with resources present (--leader-elect): no writes but
#     Lease renewals (from the API server's audit log), CPU near zero; its
#     /metrics parse strictly as Prometheus text with the expected families.
#  4. Shutdown: SIGTERM while a reconcile hangs on a stopped API server
#     exits 0 within 30 s; stop intake; every reconcile started is ended;
#     SIGINT exits 0 and releases the Lease.
#
# RT_SCENARIOS="kill_apiserver idle" runs only those; RT_KEEP_TMP=1 keeps
# the logs. Writes are attributed through the audit log: the controller uses the
# client-certificate identity tqu-cert-user, kubectl the admin.
# Conditions passed to eval are expanded when evaluated:
# shellcheck disable=SC2016
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
e2e_require_cluster
: "${TQU_BIN:?TQU_BIN is set by tests/run.sh}"
tmp=$(mktemp -d)
# shellcheck source-path=SCRIPTDIR source=runtime_lib.sh
. "$here/runtime_lib.sh"
trap rt_cleanup EXIT

CTL_KC=$TQU_KUBECONFIG_CERT
CTL_USER=tqu-cert-user
k() { kubectl -n "$ns" "$@"; }

# --------------------------------------- 1. compaction + restart + relist
scenario_compaction() {
  ns=rt-compact-$$
  rt_namespace "$ns"
  rt_tqu "$ns" a
  rt_tqu "$ns" b
  rt_start c1 "$CTL_KC" --namespace "$ns"
  if ! e2e_eventually 30 eval 'rt_observed "$ns" a && rt_observed "$ns" b'; then
    e2e_not_ok "compaction: a and b observed before the outage" "$(rt_dump c1)"
    return
  fi
  e2e_ok "compaction: a and b observed before the outage"
  sleep 1   # the echo of its own status writes has come back
  local handled_a events_a observed_a mark rev
  observed_a=$(rt_count c1 '.msg == "observed" and .key == "'"$ns/a"'"')
  handled_a=$(rt_count c1 '.key == "'"$ns/a"'" and .msg != "watch event" and .msg != "reconciling" and .msg != "reconciled"')
  events_a=$(k get events --field-selector involvedObject.name=a -o json | jq '[.items[].count] | add // 0')

  kill -STOP "$(rt_pid c1)"
  rt_tqu "$ns" c
  k delete tqu b >/dev/null
  for i in 1 2 3; do k create configmap "filler-$i" --from-literal=v=$i >/dev/null; done
  rev=$(rt_etcd_compact_head)
  e2e_check "compaction: etcd compacted at its head (revision $rev)" test -n "$rev"
  "$TQU_CLUSTER_SH" restart-apiserver "$TQU_CLUSTER_DIR" >/dev/null 2>&1
  e2e_check "compaction: API server restarted" "$TQU_CLUSTER_SH" status "$TQU_CLUSTER_DIR"
  mark=$(rt_audit_mark)
  local t_cont
  t_cont=$(rt_now)
  kill -CONT "$(rt_pid c1)"

  if e2e_eventually 30 rt_observed "$ns" c; then
    e2e_ok "compaction: c, created during the outage, observed ($(rt_since "$t_cont") s after SIGCONT)"
  else
    e2e_not_ok "compaction: c, created during the outage, observed" "$(rt_dump c1)"
  fi
  # (each kind has its informer: the one of TianqingUpgrades is the one to see)
  if e2e_eventually 20 grep -q '"msg":"relisted after the watch expired".*"resource":"tianqingupgrades"' "$tmp/c1.log"; then
    e2e_ok "compaction: the controller listed again after the watch expired"
  else
    e2e_not_ok "compaction: the controller listed again after the watch expired" "$(rt_dump c1)"
  fi
  rt_metrics c1
  local relists v
  relists=$(rt_metric "$tmp/c1.prom" 'tqu_watch_relists_total{resource="tianqingupgrades"}')
  e2e_check "compaction: tqu_watch_relists_total >= 1 (is ${relists:-missing})" rt_le 1 "${relists:-0}"
  v=$(rt_metric "$tmp/c1.prom" 'tqu_watch_restarts_total{resource="tianqingupgrades"}')
  e2e_check "compaction: tqu_watch_restarts_total >= 1 (is ${v:-missing})" rt_le 1 "${v:-0}"
  # a watch is counted when the server answers it: the first one, and the
  # one opened again after the restart and the relist
  v=$(awk '/^tqu_api_requests_total\{verb="WATCH",code="200"\}/ { n += $NF } END { print n + 0 }' "$tmp/c1.prom")
  e2e_check "compaction: tqu_api_requests_total{verb=\"WATCH\",code=\"200\"} >= 2 (is $v)" rt_le 2 "$v"
  e2e_eq "compaction: b's deletion seen (watch event DELETED)" 1 \
    "$(rt_count c1 '.msg == "watch event" and .key == "'"$ns/b"'" and .type == "DELETED"')"
  sleep 2   # anything handled twice would show by now
  e2e_eq "compaction: exactly one ADDED for a" 1 \
    "$(rt_count c1 '.msg == "watch event" and .key == "'"$ns/a"'" and .type == "ADDED"')"
  e2e_eq "compaction: a not handled again (its reconcile log lines)" "$handled_a" \
    "$(rt_count c1 '.key == "'"$ns/a"'" and .msg != "watch event" and .msg != "reconciling" and .msg != "reconciled"')"
  # (reconcile.c of the observe-only controller logs "observed" once per
  # generation; a reconcile that logs otherwise has 0 before and after)
  e2e_check "compaction: at most one \"observed\" line for a ($observed_a)" test "$observed_a" -le 1
  e2e_eq "compaction: no new \"observed\" line for a" "$observed_a" \
    "$(rt_count c1 '.msg == "observed" and .key == "'"$ns/a"'"')"
  e2e_eq "compaction: no write about a after the outage (audit log)" "" \
    "$(rt_audit_writes "$mark" "$CTL_USER" '(.objectRef.resource == "tianqingupgrades" and .objectRef.name == "a") or (.objectRef.resource == "events" and (.objectRef.name // "" | startswith("a.")))')"
  e2e_eq "compaction: a's Event count unchanged" "$events_a" \
    "$(k get events --field-selector involvedObject.name=a -o json | jq '[.items[].count] | add // 0')"
  kill -TERM "$(rt_pid c1)"
  rt_wait_exit c1 30
  e2e_eq "compaction: SIGTERM exits 0" 0 "$RT_RC"
}

# ------------------------------------------- 2. API server killed (-9)
scenario_kill_apiserver() {
  ns=rt-kill-$$
  rt_namespace "$ns"
  rt_tqu "$ns" before
  rt_start c2 "$CTL_KC" --namespace "$ns"
  if ! e2e_eventually 30 rt_observed "$ns" before; then
    e2e_not_ok "kill -9: resource observed before the kill" "$(rt_dump c2)"
    return
  fi
  local apid t_back t_seen n
  apid=$(rt_apiserver_pid)
  n=$(wc -l < "$tmp/c2.log")
  kill -KILL "$apid"
  sleep 3.5   # a few failed attempts: at about 0, 0.8 and 2.4 s
  "$TQU_CLUSTER_SH" start-apiserver "$TQU_CLUSTER_DIR" >/dev/null 2>&1
  t_back=$(rt_now)
  e2e_check "kill -9: API server started again" "$TQU_CLUSTER_SH" status "$TQU_CLUSTER_DIR"
  rt_tqu "$ns" after
  if e2e_eventually 40 rt_observed "$ns" after; then
    t_seen=$(rt_now)
    local rec
    rec=$(rt_sub "$t_seen" "$t_back")
    RECOVERY=$rec
    if rt_le "$rec" 10; then e2e_ok "kill -9: a resource created after the restart observed ${rec} s after the server was ready"
    else e2e_not_ok "kill -9: a resource created after the restart observed within 10 s of the server being ready" "took $rec s"; fi
  else
    e2e_not_ok "kill -9: a resource created after the restart observed" "$(rt_dump c2)"
  fi
  # the failures logged since the kill, with their delays
  local delays
  delays=$(tail -n +"$((n + 1))" "$tmp/c2.log" | jq -rR 'fromjson? | select(.msg == "list/watch failed; retrying" and .resource == "tianqingupgrades") | .retryIn' | tr '\n' ' ')
  BACKOFF_DELAYS=$delays
  echo "# kill -9: delays logged: $delays"
  local cnt
  cnt=$(echo "$delays" | wc -w)
  e2e_check "kill -9: at least 3 failed attempts logged with their delay ($cnt)" test "$cnt" -ge 3
  # each in [0.64, 30]; the first about 0.8; each next about doubling
  # (x2 within the jitter: ratio in [2*0.8/1.2, 2*1.2/0.8]) until the cap
  local verdict
  verdict=$(echo "$delays" | awk '{
      for (i = 1; i <= NF; i++) {
        if ($i < 0.64 || $i > 30) { print "delay " i " = " $i " outside [0.64, 30]"; exit }
        if (i == 1 && $i > 0.96) { print "first delay " $i " above 0.8 + 20 %"; exit }
        if (i > 1 && $(i-1) < 24) { r = $i / $(i-1); if (r < 1.333 || r > 3.0) { print "delay " i " / delay " i-1 " = " r; exit } }
      }
      print "ok" }')
  e2e_eq "kill -9: delays 0.8 s doubling with jitter, within [0.64, 30] ($delays)" ok "$verdict"
  e2e_check "kill -9: controller still running" rt_alive c2
  kill -TERM "$(rt_pid c2)"
  rt_wait_exit c2 30
  e2e_eq "kill -9: SIGTERM exits 0" 0 "$RT_RC"
}

# ----------------------------------------------- 3. idle, /metrics
scenario_idle() {
  ns=rt-idle-$$
  rt_namespace "$ns"
  for r in i1 i2 i3; do rt_tqu "$ns" "$r"; done
  rt_start c3 "$CTL_KC" --namespace "$ns" --leader-elect --leader-election-namespace "$ns"
  if ! e2e_eventually 30 eval 'rt_observed "$ns" i1 && rt_observed "$ns" i2 && rt_observed "$ns" i3'; then
    e2e_not_ok "idle: resources observed" "$(rt_dump c3)"
    return
  fi
  sleep 2
  local pid mark t0 cpu0 cpu1 tck writes leases cpu rss
  pid=$(rt_pid c3)
  tck=$(getconf CLK_TCK)
  mark=$(rt_audit_mark)
  cpu0=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")
  t0=$(rt_now)
  sleep 60
  cpu1=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")
  writes=$(rt_audit_writes "$mark" "$CTL_USER" '.objectRef.resource != "leases"')
  leases=$(rt_audit_writes "$mark" "$CTL_USER" '.objectRef.resource == "leases"' | wc -l)
  cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" 'BEGIN { printf "%.2f", (b - a) / t }')
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
  IDLE_CPU=$cpu IDLE_RSS_KB=$rss IDLE_LEASE_WRITES=$leases
  echo "# idle $(rt_since "$t0") s: $(echo "$writes" | grep -c .) writes besides $leases Lease renewals; CPU ${cpu} s; RSS ${rss} kB"
  e2e_eq "idle 60 s: no writes apart from Lease renewals" "" "$writes"
  e2e_check "idle 60 s: the Lease was renewed meanwhile ($leases writes)" test "$leases" -ge 20
  e2e_check "idle 60 s: CPU ${cpu} s, below 1 % of one core (0.6 s)" rt_le "$cpu" 0.6

  # /metrics: strict text format, and the expected families with sane values
  if rt_metrics c3; then e2e_ok "metrics: /metrics parses as Prometheus text (promcheck)"
  else e2e_not_ok "metrics: /metrics parses as Prometheus text (promcheck)" "$(head -n 50 "$tmp/c3.metrics.txt" 2>/dev/null)"; fi
  local f="$tmp/c3.prom" v
  v=$(rt_metric "$f" 'tqu_reconcile_total{result="success"}')
  e2e_check "metrics: tqu_reconcile_total{result=\"success\"} >= 3 (${v:-missing})" rt_le 3 "${v:-0}"
  v=$(rt_metric "$f" 'tqu_api_requests_total{verb="LIST",code="200"}')
  e2e_check "metrics: tqu_api_requests_total{verb=\"LIST\",code=\"200\"} >= 1 (${v:-missing})" rt_le 1 "${v:-0}"
  v=$(rt_metric "$f" 'tqu_api_requests_total{verb="PUT",code="200"}')
  e2e_check "metrics: tqu_api_requests_total{verb=\"PUT\",code=\"200\"} >= 3 (status and Lease writes; ${v:-missing})" rt_le 3 "${v:-0}"
  e2e_eq "metrics: tqu_leader 1" 1 "$(rt_metric "$f" 'tqu_leader')"
  e2e_eq "metrics: tqu_workqueue_depth 0" 0 "$(rt_metric "$f" 'tqu_workqueue_depth')"
  v=$(rt_metric "$f" 'process_resident_memory_bytes')
  e2e_check "metrics: process_resident_memory_bytes between 1 MB and 1 GB (${v:-missing})" \
    awk -v v="${v:-0}" 'BEGIN { exit !(v > 1e6 && v < 1e9) }'
  v=$(rt_metric "$f" 'process_cpu_seconds_total')
  e2e_check "metrics: process_cpu_seconds_total present (${v:-missing})" rt_le 0 "${v:--1}"
  kill -TERM "$pid"
  rt_wait_exit c3 30
  e2e_eq "idle: SIGTERM exits 0" 0 "$RT_RC"
}

# -------------------------------------------------------- 4. shutdown
scenario_shutdown() {
  ns=rt-stop-$$
  rt_namespace "$ns"
  rt_start c4 "$CTL_KC" --namespace "$ns" --leader-elect --leader-election-namespace "$ns"
  if ! e2e_eventually 30 grep -q '"msg":"became the leader"' "$tmp/c4.log"; then
    e2e_not_ok "shutdown: controller leads" "$(rt_dump c4)"
    return
  fi
  # 30 resources: the worker's client (5 QPS, burst 10) needs seconds for them
  local list="$tmp/many.yaml" i apid
  for i in $(seq -w 1 30); do
    cat >> "$list" <<EOF
---
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingUpgrade
metadata: {name: s$i}
spec: {fromVersion: 10.6.0.2600, initialVersion: 10.6.0.2000, toVersion: 10.7.0.2800, machines: 6, paused: true,
       ssh: {passwordSecretRef: {name: tianqing-ssh, key: password}}}
EOF
  done
  k create -f "$list" >/dev/null
  if ! e2e_eventually 30 grep -q '"msg":"reconciled"' "$tmp/c4.log"; then
    e2e_not_ok "shutdown: reconciles under way" "$(rt_dump c4)"
    return
  fi
  # The API server stops answering mid-reconcile; then SIGTERM.
  apid=$(rt_apiserver_pid)
  kill -STOP "$apid"
  RT_APISERVER_STOPPED=$apid
  sleep 0.5
  kill -TERM "$(rt_pid c4)"
  rt_wait_exit c4 40
  kill -CONT "$apid"
  RT_APISERVER_STOPPED=
  SHUTDOWN_HUNG=$RT_WAITED
  e2e_eq "shutdown: SIGTERM with the API server hung exits 0" 0 "$RT_RC"
  e2e_check "shutdown: ... within 30 s (${RT_WAITED} s)" rt_le "$RT_WAITED" 30
  local started ended after
  started=$(rt_count c4 '.msg == "reconciling"')
  ended=$(rt_count c4 '.msg == "reconciled"')
  e2e_eq "shutdown: every reconcile started was ended ($started)" "$started" "$ended"
  after=$(jq -cR 'fromjson?' "$tmp/c4.log" | awk '/"msg":"shutting down"/ { s = 1 } s && /"msg":"reconciling"/ { n++ } END { print n + 0 }')
  e2e_check "shutdown: intake stopped (reconciles begun after \"shutting down\": $after)" test "$after" -le 1
  local done_keys
  done_keys=$(rt_log c4 '.msg == "reconciled"' | jq -r .key | sort -u | wc -l)
  e2e_check "shutdown: the queue was not drained ($done_keys of 30 reconciled)" test "$done_keys" -lt 30
  "$TQU_CLUSTER_SH" status "$TQU_CLUSTER_DIR" >/dev/null || e2e_eventually 30 "$TQU_CLUSTER_SH" status "$TQU_CLUSTER_DIR"

  # SIGINT on a healthy leader: exit 0, Lease released
  # (its own Lease: c4's, unreleased while the server hung, runs out in 15 s)
  rt_start c5 "$CTL_KC" --namespace "$ns" --leader-elect --leader-election-namespace "$ns" \
    --leader-election-id sigint-test
  if ! e2e_eventually 30 grep -q '"msg":"became the leader"' "$tmp/c5.log"; then
    e2e_not_ok "shutdown: second controller leads" "$(rt_dump c5)"
    return
  fi
  kill -INT "$(rt_pid c5)"
  rt_wait_exit c5 30
  e2e_eq "shutdown: SIGINT exits 0" 0 "$RT_RC"
  e2e_check "shutdown: ... within 30 s (${RT_WAITED} s)" rt_le "$RT_WAITED" 30
  e2e_eq "shutdown: the Lease is released (holderIdentity empty)" "" \
    "$(k get lease sigint-test -o jsonpath='{.spec.holderIdentity}')"
  e2e_check "shutdown: logs \"stopped\" last" eval '[ "$(tail -n1 "$tmp/c5.log" | jq -r .msg)" = stopped ]'
}

# RT_SCENARIOS="shutdown idle" runs only those (for debugging)
for s in ${RT_SCENARIOS:-compaction kill_apiserver shutdown idle}; do
  "scenario_$s"
done

echo "# measured: recovery after kill -9 ${RECOVERY:-?} s; backoff delays ${BACKOFF_DELAYS:-?};" \
  "idle 60 s: CPU ${IDLE_CPU:-?} s, RSS ${IDLE_RSS_KB:-?} kB, ${IDLE_LEASE_WRITES:-?} Lease writes;" \
  "shutdown with a hung API server ${SHUTDOWN_HUNG:-?} s"
e2e_summary
