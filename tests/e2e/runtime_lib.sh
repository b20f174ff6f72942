# shellcheck shell=bash
# tmp comes from the sourcing script; RT_RC/RT_WAITED are results for it:
# shellcheck disable=SC2154,SC2034
# Helpers for the end-to-end scripts that run the controller binary under
# faults (test_runtime.sh, test_failover.sh); source it after lib.sh, with
# $tmp set to a scratch folder. Every controller started here is killed by
# rt_cleanup (run it from an EXIT trap), resumed first if it was stopped.
#
#   rt_start NAME KUBECONFIG ARGS...  start $TQU_BIN in the background: JSON
#                                     debug log in $tmp/NAME.log, health on a
#                                     free port; pid in $tmp/NAME.pid
#   rt_pid NAME / rt_port NAME        its pid / health port (waits for it)
#   rt_alive NAME                     0 while it runs
#   rt_wait_exit NAME SECS            wait for it to exit; sets RT_RC (exit
#                                     status, 255 if still running) and
#                                     RT_WAITED (seconds)
#   rt_log NAME JQ-FILTER             its log lines (JSON) matching the filter
#   rt_count NAME JQ-FILTER           how many
#   rt_ts_of NAME JQ-FILTER           unix time (s.ms) of the first such line
#   rt_metrics NAME                   /metrics checked by promcheck into
#                                     $tmp/NAME.prom ("name{labels} value")
#   rt_metric FILE SERIES             the value of SERIES in such a file
#   rt_audit_mark                     the audit log's size now (an offset)
#   rt_audit_writes OFFSET USER [JQ]  write requests by USER since OFFSET
#   rt_tqu NS NAME [SPEC-EXTRA]       create a paused TianqingUpgrade
#   rt_observed NS NAME               0 if status.observedGeneration is the
#                                     resource's generation
#   rt_etcd_compact_head              etcdctl compact <head revision>

RT_PIDS=()
RT_NAMESPACES=()
RT_APISERVER_STOPPED=
PROMCHECK=${PROMCHECK:-$(dirname "$TQU_BIN")/tests/tools/promcheck}

rt_now() { date +%s.%N | cut -c1-14; }
# rt_since T0: seconds from T0 to now; rt_sub A B: A - B (3 decimals)
rt_since() { awk -v a="$(rt_now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
rt_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# rt_le A B: 0 if A <= B (numbers)
rt_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

rt_start() {
  local name=$1 kc=$2
  shift 2
  "$TQU_BIN" --kubeconfig "$kc" --health-addr 127.0.0.1:0 --log-level debug --log-format json "$@" \
    </dev/null >"$tmp/$name.out" 2>"$tmp/$name.log" &
  echo $! > "$tmp/$name.pid"
  RT_PIDS+=($!)
}

rt_pid() { cat "$tmp/$1.pid"; }

rt_alive() {
  local p st
  p=$(rt_pid "$1") || return 1
  [ -r "/proc/$p/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -c1)
  [ -n "$st" ] && [ "$st" != Z ]
}

rt_port() {
  local name=$1 port=''
  e2e_eventually 20 grep -q '"msg":"serving /healthz' "$tmp/$name.log" || return 1
  port=$(rt_log "$name" '.msg | startswith("serving /healthz")' | jq -r '.port' | head -n1)
  [ -n "$port" ] && echo "$port"
}

rt_wait_exit() {
  local name=$1 secs=$2 p t0
  p=$(rt_pid "$name")
  t0=$(rt_now)
  RT_RC=255
  local deadline=$(( $(date +%s) + secs ))
  while rt_alive "$name"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      RT_WAITED=$(rt_since "$t0")
      return 1
    fi
    sleep 0.05
  done
  wait "$p" 2>/dev/null
  RT_RC=$?
  RT_WAITED=$(rt_since "$t0")
  return 0
}

# The log may end in a partial line while the controller writes: skip what
# does not parse.
rt_log() { jq -cR "fromjson? | select($2)" "$tmp/$1.log" 2>/dev/null; }
rt_count() { rt_log "$1" "$2" | wc -l; }

rt_ts_of() {
  local ts
  ts=$(rt_log "$1" "$2" | head -n1 | jq -r '.ts')
  [ -n "$ts" ] && [ "$ts" != null ] || return 1
  date -u -d "$ts" +%s.%3N
}

rt_metrics() {
  local name=$1 port
  port=$(rt_port "$name") || return 1
  curl -fsS "http://127.0.0.1:$port/metrics" > "$tmp/$name.metrics.txt" || return 1
  "$PROMCHECK" "$tmp/$name.metrics.txt" > "$tmp/$name.prom"
}

rt_metric() { awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print $NF; exit }' "$1"; }

rt_audit_mark() { stat -c %s "$TQU_AUDIT_LOG"; }

rt_audit_writes() {
  local off=$1 user=$2 extra=${3:-true}
  tail -c +"$((off + 1))" "$TQU_AUDIT_LOG" |
    jq -cR --arg u "$user" "fromjson? | select(.user.username == \$u and
      (.verb | IN(\"create\", \"update\", \"patch\", \"delete\", \"deletecollection\")) and ($extra))"
}

rt_tqu() {
  local ns=$1 name=$2 extra=${3:-}
  kubectl -n "$ns" create -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingUpgrade
metadata:
  name: $name
spec:
  fromVersion: 10.6.0.2600
  initialVersion: 10.6.0.2000
  toVersion: 10.7.0.2800
  machines: 6
  paused: true
  ssh:
    passwordSecretRef: {name: tianqing-ssh, key: password}
$extra
EOF
}

rt_observed() {
  local gen obs
  read -r gen obs < <(kubectl -n "$1" get tqu "$2" \
    -o jsonpath='{.metadata.generation} {.status.observedGeneration}{"\n"}' 2>/dev/null)
  [ -n "$gen" ] && [ "$gen" = "${obs:-}" ]
}

rt_namespace() {
  kubectl create namespace "$1" >/dev/null && RT_NAMESPACES+=("$1")
}

rt_etcd_compact_head() {
  local rev
  rev=$(etcdctl endpoint status -w json | jq -r '.[0].Status.header.revision') || return 1
  [ -n "$rev" ] && [ "$rev" != null ] || return 1
  etcdctl compact "$rev" >/dev/null && echo "$rev"
}

rt_apiserver_pid() { cat "$TQU_CLUSTER_DIR/apiserver.pid"; }

rt_cleanup() {
  local p ns
  if [ -n "$RT_APISERVER_STOPPED" ]; then kill -CONT "$RT_APISERVER_STOPPED" 2>/dev/null; fi
  for p in "${RT_PIDS[@]}"; do
    kill -CONT "$p" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for ns in "${RT_NAMESPACES[@]}"; do
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1
  done
  if [ -n "${RT_KEEP_TMP:-}" ]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# rt_dump NAME: the last lines of a controller's log as details of a failure.
rt_dump() { tail -n "${2:-30}" "$tmp/$1.log" 2>/dev/null; }
