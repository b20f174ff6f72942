#!/usr/bin/env bash
# TianqingTuning against a second, real etcd (Debian's etcd-server, started
# here on free loopback ports beside the control plane): the keys hold the
# desired values (read back with the real etcdctl), an old value put back
# with etcdctl is corrected, a removed -control.type=config argument is
# added back, other arguments are left alone, deleting the resource puts
# every original back exactly (an absent key is absent again), and an
# unreachable etcd gives EtcdUnreachable and changes nothing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
UP_DIR=$tmp
etcd_pid=
cleanup() {
  up_cleanup
  [ -n "$etcd_pid" ] && { kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cport=$(free_port); pport=$(free_port); dead=$(free_port)
/usr/bin/etcd --name tt --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "tt=http://127.0.0.1:$pport" --log-level error >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
# the control plane's own etcd settings are in the environment: not these
ec() {
  env -u ETCDCTL_ENDPOINTS -u ETCDCTL_CACERT -u ETCDCTL_CERT -u ETCDCTL_KEY ETCDCTL_API=3 \
    etcdctl --endpoints "http://127.0.0.1:$cport" --command-timeout=5s "$@"
}
get() { ec get "$1" --print-value-only 2>/dev/null; }
# etcdctl 3.4 has no --count-only: the count of the JSON answer
has() { [ "$(ec get "$1" -w json 2>/dev/null | jq '.count // 0')" = 1 ]; }
export cport
export -f ec get
e2e_eventually 20 ec endpoint health
e2e_check "a second etcd runs on 127.0.0.1:$cport" ec endpoint health

# as the vendor left the site: rate limiting off, styx's own limit 100, the
# global limit and the cdn keys never set
ec put da.skylar.rate_limit.enable false >/dev/null
ec put styx.rate_limit.max_request_per_unit 100 >/dev/null
ns=tt
apps=tt-apps
kubectl create namespace "$ns" >/dev/null
kubectl create namespace "$apps" >/dev/null
deploy() {   # NAME CONTAINER-JSON...
  local name=$1
  shift
  local cs
  cs=$(printf '%s\n' "$@" | jq -s -c .)
  kubectl apply -f - >/dev/null <<EOF
{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "$name", "namespace": "$apps"},
 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "$name"}},
  "template": {"metadata": {"labels": {"app": "$name"}}, "spec": {"containers": $cs}}}}
EOF
}
deploy styx-file-assessment-go \
  '{"name": "styx-file-assessment-go", "image": "styx:1", "args": ["-config.ns=styx", "-port=8080", "-control.type=none"]}' \
  '{"name": "sidecar", "image": "side:1", "args": ["-config.ns=other"]}'
deploy edge2 '{"name": "edge2", "image": "edge2:1", "args": ["-v=2", "-edge2_max_clientnum=10"]}'
deploy ambiguous '{"name": "a", "image": "a:1", "args": ["-config.ns=one"], "env": [{"name": "CONFIG_NS", "value": "two"}]}'
"$TQU_REPO/tests/fixtures/set-rollout.sh" "$apps" --all >/dev/null
args() { kubectl -n "$apps" get deploy "$1" -o json | jq -c ".spec.template.spec.containers[${2:-0}].args"; }
styx0=$(args styx-file-assessment-go); side0=$(args styx-file-assessment-go 1); edge0=$(args edge2)

up_kubelet_start
up_controller ctl

tuning() {   # NAME ENDPOINT [EXTRA-SPEC]
  kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingTuning
metadata: {name: $1, namespace: $ns}
spec:
  etcd: {endpoints: ["$2"]}
  rateLimit:
    global: {enabled: true, maxRequestPerUnit: 500}
    services:
    - {namespace: $apps, deployment: styx-file-assessment-go, maxRequestPerUnit: 300}
  edge2: {namespace: $apps, deployment: edge2, maxClients: 1000}
  cdn: {maxRequest: 3000, diskSpace: 20G}
  backupDir: $tmp/backups
${3:-}
EOF
}
state() { kubectl -n "$ns" get tqt "$1" -o json 2>/dev/null | jq -r '"\(.status.phase) \([.status.conditions[]? | select(.type=="Stalled" and .status=="True") | .reason][0] // "")"'; }

# ------------------------------------------------------ the CRD refuses
out=$(tuning bad "http://127.0.0.1:$cport" "  edge2: {namespace: $apps, deployment: edge2, maxClients: 0}" 2>&1)
e2e_match "the CRD refuses maxClients 0" "maxClients.*(greater than or equal to 1|should be greater)" "$out"

# ------------------------------------------------------ etcd unreachable
tuning down "http://127.0.0.1:$dead"
e2e_eventually 30 bash -c "kubectl -n $ns get tqt down -o json | jq -e '.status.conditions[]? | select(.type==\"Stalled\" and .reason==\"EtcdUnreachable\")' >/dev/null"
e2e_eq "etcd down: Blocked, EtcdUnreachable" "Blocked EtcdUnreachable" "$(state down)"
e2e_eq "etcd down: no argument changed" "$styx0 $edge0" "$(args styx-file-assessment-go) $(args edge2)"
e2e_eq "etcd down: no key changed" "false 100 " "$(get da.skylar.rate_limit.enable) $(get styx.rate_limit.max_request_per_unit) $(get da.skylar.rate_limit.max_request_per_unit)"
kubectl -n "$ns" delete tqt down --timeout=30s >/dev/null 2>&1
e2e_check_fails "etcd down: deletion is not held (nothing to restore)" kubectl -n "$ns" get tqt down

# ------------------------------------------------------ ambiguous config.ns
kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingTuning
metadata: {name: amb, namespace: $ns}
spec:
  etcd: {endpoints: ["http://127.0.0.1:$cport"]}
  rateLimit: {services: [{namespace: $apps, deployment: ambiguous, maxRequestPerUnit: 5}]}
  backupDir: $tmp/backups
EOF
e2e_eventually 30 bash -c "[ \"\$(kubectl -n $ns get tqt amb -o jsonpath='{.status.phase}')\" = Blocked ]"
e2e_eq "two config.ns values: Blocked, ConfigNamespaceAmbiguous" "Blocked ConfigNamespaceAmbiguous" "$(state amb)"
kubectl -n "$ns" delete tqt amb --timeout=30s >/dev/null 2>&1

# ------------------------------------------------------ dry run
tuning dry "http://127.0.0.1:$cport" "  dryRun: true"
e2e_eventually 30 bash -c "[ \"\$(kubectl -n $ns get tqt dry -o jsonpath='{.status.phase}')\" = Succeeded ]"
json=$(kubectl -n "$ns" get tqt dry -o json)
e2e_eq "dry run: Succeeded, DryRunComplete" "Succeeded DryRunComplete" \
  "$(jq -r '"\(.status.phase) \([.status.conditions[] | select(.type=="Ready") | .reason][0])"' <<<"$json")"
e2e_eq "dry run: status.plan lists the 7 settings" 7 "$(jq '[.status.plan[] | select(.step=="Apply")] | length' <<<"$json")"
e2e_match "dry run: the plan gives current and desired values" \
  "etcd:da.skylar.rate_limit.enable global/rateLimitEnable: current false, desired true" \
  "$(jq -r '.status.plan[] | "\(.target) \(.detail)"' <<<"$json")"
e2e_match "dry run: an absent key is shown as absent" "current absent, desired 3000" "$(jq -r '.status.plan[].detail' <<<"$json")"
e2e_eq "dry run: no key changed" "false 100 " \
  "$(get da.skylar.rate_limit.enable) $(get styx.rate_limit.max_request_per_unit) $(get da.skylar.rate_limit.max_request_per_unit)"
e2e_eq "dry run: no argument changed" "$styx0 $edge0" "$(args styx-file-assessment-go) $(args edge2)"
kubectl -n "$ns" delete tqt dry --timeout=30s >/dev/null 2>&1
e2e_check_fails "dry run: deleted at once (no finalizer)" kubectl -n "$ns" get tqt dry

# ------------------------------------------------------ applied
t0=$(date +%s.%N)
tuning remedies "http://127.0.0.1:$cport"
e2e_check "kubectl wait --for=condition=Ready" kubectl -n "$ns" wait --for=condition=Ready tqt/remedies --timeout=60s
json=$(kubectl -n "$ns" get tqt remedies -o json)
e2e_eq "every step Succeeded" "Validate=Succeeded Backup=Succeeded Apply=Succeeded Verify=Succeeded" \
  "$(jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")' <<<"$json")"
e2e_eq "etcdctl: the keys hold the desired values" "true 500 300 3000 20G" \
  "$(get da.skylar.rate_limit.enable) $(get da.skylar.rate_limit.max_request_per_unit) $(get styx.rate_limit.max_request_per_unit) $(get da.skylar.project.cdn.max_request) $(get da.skylar.project.cdn.disk_space)"
e2e_eq "styx: -control.type=config replaced in place, other arguments untouched" \
  '["-config.ns=styx","-port=8080","-control.type=config"]' "$(args styx-file-assessment-go)"
e2e_eq "styx: the sidecar untouched" "$side0" "$(args styx-file-assessment-go 1)"
e2e_eq "edge2: -edge2_max_clientnum=1000" '["-v=2","-edge2_max_clientnum=1000"]' "$(args edge2)"
e2e_eq "status.items: 7 Applied" "7 7" "$(jq '[.status.items[] | select(.state=="Applied")] | length' <<<"$json") $(jq .status.applied <<<"$json")"
e2e_eq "status.items: the originals (absent keys say absent)" \
  "false|absent|-control.type=none|100|-edge2_max_clientnum=10|absent|absent" \
  "$(jq -r '[.status.items[].original] | join("|")' <<<"$json")"
folder=$(jq -r .status.backupFolder <<<"$json")
e2e_eq "originals.json saved in the backup folder" "100" \
  "$(jq -r '."etcd:styx.rate_limit.max_request_per_unit"' "$folder/originals.json" 2>/dev/null)"
e2e_check "the Deployment manifests saved before the change" \
  bash -c "jq -e '.spec.template.spec.containers[0].args == $styx0' '$folder/deployment.$apps.styx-file-assessment-go.json' >/dev/null"
e2e_match "kubectl get tqt: READY APPLIED DRIFTED AGE" "^remedies +True +7 +0 " "$(kubectl -n "$ns" get tqt remedies --no-headers)"

# ------------------------------------------------------ drift in etcd
ec put da.skylar.rate_limit.max_request_per_unit 1 >/dev/null
e2e_eventually 10 bash -c '[ "$(get da.skylar.rate_limit.max_request_per_unit)" = 500 ]'
e2e_eq "etcdctl put of an old value: corrected" 500 "$(get da.skylar.rate_limit.max_request_per_unit)"
ec del da.skylar.project.cdn.disk_space >/dev/null
e2e_eventually 10 bash -c '[ "$(get da.skylar.project.cdn.disk_space)" = 20G ]'
e2e_eq "etcdctl del of a key: put back" 20G "$(get da.skylar.project.cdn.disk_space)"
e2e_eventually 10 bash -c "kubectl -n $ns get events -o json | jq -e '.items[] | select(.reason==\"TuningRestored\")' >/dev/null"
e2e_match "a TuningRestored Event says so" "TuningRestored" "$(kubectl -n "$ns" get events)"

# ------------------------------------------------------ drift in a Deployment
kubectl -n "$apps" patch deploy styx-file-assessment-go --type=json \
  -p '[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["-config.ns=styx","-port=9090"]}]' >/dev/null
e2e_eventually 10 bash -c "kubectl -n $apps get deploy styx-file-assessment-go -o json | jq -e '.spec.template.spec.containers[0].args | index(\"-control.type=config\")' >/dev/null"
e2e_eq "a removed -control.type=config is added back; -port=9090 left as the person set it" \
  '["-config.ns=styx","-port=9090","-control.type=config"]' "$(args styx-file-assessment-go)"
e2e_eventually 10 bash -c "[ \"\$(kubectl -n $ns get tqt remedies -o jsonpath='{.status.drifted}')\" -ge 3 ]"
e2e_match "status.drifted counts the corrections" "^[3-9]$" "$(kubectl -n "$ns" get tqt remedies -o jsonpath='{.status.drifted}')"
# /metrics: the counter the TianqingTuningDrifted alert reads, one series a setting
mport=$(grep -m1 '"msg":"serving /healthz' "$UP_DIR/ctl.log" | jq -r .port)
curl -fsS "http://127.0.0.1:$mport/metrics" > "$UP_DIR/metrics.txt" 2>/dev/null
item=$(kubectl -n "$ns" get tqt remedies -o json |
  jq -r '.status.items[] | select(.target == "etcd:da.skylar.rate_limit.max_request_per_unit") | .name')
e2e_eq "tqu_tuning_drift_corrections_total: one series per corrected setting" \
  "tqu_tuning_drift_corrections_total{namespace=\"$ns\",name=\"remedies\",item=\"$item\"} 1" \
  "$(grep -F "item=\"$item\"}" "$UP_DIR/metrics.txt")"
e2e_eq "tqu_tuning_drift_corrections_total: the corrections add up to status.drifted" \
  "$(kubectl -n "$ns" get tqt remedies -o jsonpath='{.status.drifted}')" \
  "$(awk '/^tqu_tuning_drift_corrections_total\{/ { n += $NF } END { print n + 0 }' "$UP_DIR/metrics.txt")"
# put the person's change back as it was, so the restore below is exact
kubectl -n "$apps" patch deploy styx-file-assessment-go --type=json \
  -p '[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["-config.ns=styx","-port=8080","-control.type=config"]}]' >/dev/null

# ------------------------------------------------------ deleted: originals back
e2e_check "kubectl delete returns once the originals are back" \
  kubectl -n "$ns" delete tqt remedies --timeout=60s
e2e_eq "keys: original values back, absent keys absent again" "false 100 absent absent absent" \
  "$(get da.skylar.rate_limit.enable) $(get styx.rate_limit.max_request_per_unit) \
$(has da.skylar.rate_limit.max_request_per_unit && echo present || echo absent) \
$(has da.skylar.project.cdn.max_request && echo present || echo absent) \
$(has da.skylar.project.cdn.disk_space && echo present || echo absent)"
e2e_eq "styx's arguments exactly as before" "$styx0" "$(args styx-file-assessment-go)"
e2e_eq "edge2's arguments exactly as before" "$edge0" "$(args edge2)"
e2e_match "an OriginalsRestored Event says what" "OriginalsRestored.*styx.rate_limit.max_request_per_unit = 100" \
  "$(kubectl -n "$ns" get events -o json | jq -r '.items[] | "\(.reason) \(.message)"')"
echo "# run time $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s from apply to restored"

if [ "$E2E_FAILED" != 0 ]; then
  kubectl -n "$ns" get tqt -o yaml 2>/dev/null | sed 's/^/#   /' | head -80
  sed 's/^/#   /' "$tmp/ctl.log" | tail -40
fi
up_stop ctl
e2e_summary
exit $?
