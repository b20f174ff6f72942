#!/usr/bin/env bash
# TianqingTuning's bad input and faults, against a second, real etcd served
# over TLS (its own CA, made here): each gives its exact reason and changes
# nothing (every etcd key read back with etcdctl, every container's args with
# kubectl):
#   - numbers out of range are refused by the CRD (kubectl apply fails);
#   - a wrong CA (EtcdTLSFailed), a missing TLS Secret (EtcdTLSFailed), an
#     etcd that accepts connections and never answers (EtcdUnreachable), a
#     port nobody listens on (EtcdUnreachable);
#   - a missing Deployment (DeploymentNotFound, also when only edge2's is
#     missing: the keys of the others are not written first), a missing
#     container (ContainerNotFound, named or none named like it), no
#     config.ns (ConfigNamespaceNotFound), two (ConfigNamespaceAmbiguous);
#     none of those holds its deletion (nothing to put back);
# then with the right CA: the missing Deployment appears and is tuned at
# once (it was watched), etcd killed -9 and started again (drift corrected
# again once it is back), and a deletion while etcd is down waits, with an
# Event, until etcd is back and every original is in place.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
source "$here/tuning_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
UP_DIR=$tmp
hung_pid=
cleanup() {
  up_cleanup
  tt_etcd_stop
  [ -n "$hung_pid" ] && { kill "$hung_pid" 2>/dev/null; wait "$hung_pid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT

tt_etcd_start tls
e2e_check "a second etcd serves https on $TT_URL (its own CA)" ec endpoint health
# as the vendor left the site: rate limiting off, styx's own limit 100, the
# global limit and the cdn keys never set
ec put da.skylar.rate_limit.enable false >/dev/null
ec put styx.rate_limit.max_request_per_unit 100 >/dev/null
KEYS0="false - 100 - -"

ns=tf
TT_APPS=tf-apps
kubectl create namespace "$ns" >/dev/null
kubectl create namespace "$TT_APPS" >/dev/null
kubectl -n "$ns" create secret generic etcd-tls --from-file=ca.crt="$tmp/pki/ca.crt" >/dev/null
kubectl -n "$ns" create secret generic etcd-wrong --from-file=ca.crt="$tmp/pki/other-ca.crt" >/dev/null
tt_deploy "$TT_APPS" styx-file-assessment-go \
  '{"name": "styx-file-assessment-go", "image": "styx:1", "args": ["-config.ns=styx", "-port=8080", "-control.type=none"]}' \
  '{"name": "sidecar", "image": "side:1", "args": ["-config.ns=other"]}'
tt_deploy "$TT_APPS" edge2 '{"name": "edge2", "image": "edge2:1", "args": ["-v=2", "-edge2_max_clientnum=10"]}'
tt_deploy "$TT_APPS" noconf '{"name": "noconf", "image": "n:1", "args": ["-port=1"]}'
tt_deploy "$TT_APPS" ambiguous '{"name": "a", "image": "a:1", "args": ["-config.ns=one"], "env": [{"name": "CONFIG_NS", "value": "two"}]}'
tt_deploy "$TT_APPS" multi '{"name": "a", "image": "a:1", "args": ["-config.ns=m"]}' '{"name": "b", "image": "b:1"}'
"$TQU_REPO/tests/fixtures/set-rollout.sh" "$TT_APPS" --all >/dev/null
all_args() {
  local d
  for d in styx-file-assessment-go edge2 noconf ambiguous multi; do printf '%s ' "$(tt_args "$TT_APPS" "$d")"; done
  tt_args "$TT_APPS" styx-file-assessment-go 1
}
ARGS0=$(all_args)

# ------------------------------------------------------ the CRD refuses
refused() {   # DESC NAME SPEC-LINES
  local out
  if out=$(kubectl apply -f - 2>&1 <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingTuning
metadata: {name: $2, namespace: $ns}
spec:
  etcd: {endpoints: ["$TT_URL"]}
  backupDir: $tmp/backups
$3
EOF
  ); then
    e2e_not_ok "the CRD refuses $1" "kubectl apply succeeded: $out"
  elif kubectl -n "$ns" get tqt "$2" >/dev/null 2>&1; then
    e2e_not_ok "the CRD refuses $1" "the resource exists"
  else
    e2e_match "the CRD refuses $1" "Invalid value|should be|must be" "$out"
  fi
}
refused "global maxRequestPerUnit 0" r1 "  rateLimit: {global: {enabled: true, maxRequestPerUnit: 0}}"
refused "a service's maxRequestPerUnit 1000001" r2 \
  "  rateLimit: {services: [{namespace: $TT_APPS, deployment: styx-file-assessment-go, maxRequestPerUnit: 1000001}]}"
refused "edge2 maxClients 1000001" r3 "  edge2: {namespace: $TT_APPS, deployment: edge2, maxClients: 1000001}"
refused "cdn maxRequest 10000001" r4 "  cdn: {maxRequest: 10000001}"
refused "cdn diskSpace 20X" r5 "  cdn: {diskSpace: 20X}"

# ------------------------------------------------------ every fault at once
up_kubelet_start
up_controller ctl

hport=$(tt_free_port) dport=$(tt_free_port)
# accepts connections (the kernel's backlog) and never answers
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', $hport)); s.listen(8); time.sleep(600)" &
hung_pid=$!
declare -A WANT=()
fault() {   # NAME "PHASE REASON" [spec lines]  (TT_SECRET, TT_ENDPOINT from the caller)
  WANT[$1]=$2
  local out
  out=$(tt_apply "$ns" "$1" "${3:-}" 2>&1) || e2e_not_ok "$1 applied" "$out"
}
TT_SECRET=etcd-wrong fault wrong-ca "Blocked EtcdTLSFailed"
TT_SECRET=no-such-secret fault no-secret "Blocked EtcdTLSFailed"
TT_SECRET=etcd-tls TT_ENDPOINT=https://127.0.0.1:$hport fault hung "Blocked EtcdUnreachable"
TT_SECRET=etcd-tls TT_ENDPOINT=https://127.0.0.1:$dport fault down "Blocked EtcdUnreachable"
# the same spec with its own service (and edge2's Deployment)
svc_fault() {  # NAME "PHASE REASON" SERVICE-FLOW [EDGE2-DEPLOYMENT]
  WANT[$1]=$2
  local out
  out=$(kubectl apply -f - 2>&1 <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingTuning
metadata: {name: $1, namespace: $ns}
spec:
  etcd: {endpoints: ["$TT_URL"], tlsSecretRef: {name: etcd-tls}}
  rateLimit:
    global: {enabled: true, maxRequestPerUnit: 500}
    services: [$3]
  edge2: {namespace: $TT_APPS, deployment: ${4:-edge2}, maxClients: 1000}
  cdn: {maxRequest: 3000, diskSpace: 20G}
  backupDir: $tmp/backups
EOF
  ) || e2e_not_ok "$1 applied" "$out"
}
svc_fault no-deploy "Blocked DeploymentNotFound" "{namespace: $TT_APPS, deployment: late, maxRequestPerUnit: 300}"
svc_fault no-edge2 "Blocked DeploymentNotFound" \
  "{namespace: $TT_APPS, deployment: styx-file-assessment-go, maxRequestPerUnit: 300}" no-such-edge2
svc_fault no-container "Blocked ContainerNotFound" \
  "{namespace: $TT_APPS, deployment: styx-file-assessment-go, container: nope, maxRequestPerUnit: 300}"
svc_fault multi "Blocked ContainerNotFound" "{namespace: $TT_APPS, deployment: multi, maxRequestPerUnit: 300}"
svc_fault noconf "Blocked ConfigNamespaceNotFound" "{namespace: $TT_APPS, deployment: noconf, maxRequestPerUnit: 300}"
svc_fault ambiguous "Blocked ConfigNamespaceAmbiguous" "{namespace: $TT_APPS, deployment: ambiguous, maxRequestPerUnit: 300}"

msg() { kubectl -n "$ns" get tqt "$1" -o jsonpath='{.status.message}' 2>/dev/null; }
for n in wrong-ca no-secret hung down no-deploy no-edge2 no-container multi noconf ambiguous; do
  tt_wait_state 45 "$ns" "$n" "${WANT[$n]}"
  e2e_eq "$n: ${WANT[$n]}" "${WANT[$n]}" "$(tt_state "$ns" "$n")"
done
e2e_match "wrong CA: the message says the TLS check failed" "TLS with the etcd failed" "$(msg wrong-ca)"
e2e_match "missing Secret: the message names it" "no-such-secret" "$(msg no-secret)"
e2e_match "missing Deployment: the message names it and the field" \
  "Deployment $TT_APPS/late \(spec.rateLimit.services\[0\]\) not found" "$(msg no-deploy)"
e2e_match "missing container: the message names it" "no container named nope" "$(msg no-container)"
e2e_match "several containers: the message says to set container" "none is named like it" "$(msg multi)"
e2e_match "two config.ns: the message says how many" "names 2 different config.ns values" "$(msg ambiguous)"
e2e_eq "after every fault: no etcd key changed" "$KEYS0" "$(tt_keys)"
e2e_eq "after every fault: no container's args changed" "$ARGS0" "$(all_args)"
e2e_eq "no fault wrote a backup or took a finalizer" "0 0" \
  "$(find "$tmp/backups" -name originals.json 2>/dev/null | wc -l) $(kubectl -n "$ns" get tqt -o json | jq '[.items[] | select(.metadata.finalizers)] | length')"
for n in wrong-ca no-secret hung down no-edge2 no-container multi noconf ambiguous; do
  kubectl -n "$ns" delete tqt "$n" --wait=false >/dev/null 2>&1
done
e2e_check "the faulty ones are deleted at once (nothing to put back)" \
  e2e_eventually 20 bash -c "[ \"\$(kubectl -n $ns get tqt -o name | tr '\n' ' ')\" = 'tianqingtuning.upgrade.tianqing.io/no-deploy ' ]"

# ------------------------------------------------------ the missing Deployment appears
tt_deploy "$TT_APPS" late '{"name": "late", "image": "l:1", "args": ["-config.ns=late"]}'
"$TQU_REPO/tests/fixtures/set-rollout.sh" "$TT_APPS" late >/dev/null
t0=$(date +%s)
if kubectl -n "$ns" wait --for=condition=Ready tqt/no-deploy --timeout=40s >/dev/null 2>&1; then
  e2e_ok "the missing Deployment created: applied without waiting for the minute's re-check ($(( $(date +%s) - t0 )) s)"
else
  e2e_not_ok "the missing Deployment created: applied" "$(tt_state "$ns" no-deploy)" "$(msg no-deploy)"
fi
e2e_eq "over TLS: the keys hold the desired values" "true 500 300 3000 20G" \
  "$(tt_val da.skylar.rate_limit.enable) $(tt_val da.skylar.rate_limit.max_request_per_unit) $(tt_val late.rate_limit.max_request_per_unit) $(tt_val da.skylar.project.cdn.max_request) $(tt_val da.skylar.project.cdn.disk_space)"
e2e_eq "late: -control.type=config added" '["-config.ns=late","-control.type=config"]' "$(tt_args "$TT_APPS" late)"

# ------------------------------------------------------ etcd down and back
tt_etcd_stop
sleep 2
tt_etcd_restart
ec put da.skylar.rate_limit.max_request_per_unit 1 >/dev/null
if e2e_eventually 30 tt_is da.skylar.rate_limit.max_request_per_unit 500; then
  e2e_ok "etcd killed -9 and started again: a value put back is corrected (the watch reconnected)"
else
  e2e_not_ok "etcd killed -9 and started again: a value put back is corrected" "$(tt_get da.skylar.rate_limit.max_request_per_unit)"
fi

tt_etcd_stop
kubectl -n "$ns" delete tqt no-deploy --wait=false >/dev/null
sleep 4
e2e_check "etcd down: the deletion waits (the finalizer holds it)" kubectl -n "$ns" get tqt no-deploy
e2e_eventually 20 bash -c "kubectl -n $ns get events -o json | jq -e '.items[] | select(.reason==\"EtcdUnreachable\" and (.message | test(\"deletion waits\")))' >/dev/null"
e2e_match "... and an EtcdUnreachable Event says so" "deletion waits until the originals are back" \
  "$(kubectl -n "$ns" get events -o json | jq -r '.items[] | select(.reason=="EtcdUnreachable") | .message')"
tt_etcd_restart
t0=$(date +%s)
if e2e_eventually 30 bash -c "! kubectl -n $ns get tqt no-deploy >/dev/null 2>&1"; then
  e2e_ok "etcd back: the originals are put back and the resource goes ($(( $(date +%s) - t0 )) s; it does not wait for the re-check)"
else
  e2e_not_ok "etcd back: the originals are put back and the resource goes" "$(tt_state "$ns" no-deploy)"
fi
e2e_eq "every key as before (absent ones absent again)" "$KEYS0 -" "$(tt_keys) $(tt_val late.rate_limit.max_request_per_unit)"
e2e_eq "every container's args as before" "$ARGS0" "$(all_args)"
e2e_eq "late's args as before" '["-config.ns=late"]' "$(tt_args "$TT_APPS" late)"

if [ "$E2E_FAILED" != 0 ]; then
  kubectl -n "$ns" get tqt -o yaml 2>/dev/null | sed 's/^/#   /' | head -60
  sed 's/^/#   /' "$tmp/ctl.log" | tail -40
fi
e2e_check_fails "no sanitizer report in the controller's log" grep -qE 'AddressSanitizer|runtime error:' "$tmp/ctl.log"
up_stop ctl
e2e_summary
exit $?
