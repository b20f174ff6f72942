#!/usr/bin/env bash
# TianqingTuning across a crash, a vendor that replaces a Deployment, and a
# TianqingUpgrade whose Upgrade step runs, against a second, real etcd:
#   - the controller killed -9 between the etcd write and the Deployment
#     patch: made deterministic by running it as a user that may not patch
#     Deployments (the etcd keys are written, every patch is refused), killed
#     once its log shows the refusal; a controller with the full grant then
#     resumes: no second backup (originals.json byte for byte, Backup run
#     once), the originals kept (the ones before the crash, not the values
#     it had written), the arguments set, and deletion puts all back;
#   - a Deployment deleted and created again (a new uid, the vendor's args)
#     while Verify waits for a rollout: the argument is set on the new one,
#     the vendor's other arguments kept, the first originals and the saved
#     manifest kept;
#   - while a TianqingUpgrade's Upgrade step runs (update.sh of the fake
#     tree, 10 s): a new tuning waits (Waiting, UpgradeInProgress) and
#     writes nothing; a kept one does not correct a value changed back;
#     both apply as soon as the Upgrade step ends.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
source "$here/tuning_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}" "${TQU_CLUSTER_SH:?}"
tmp=$(mktemp -d)
UP_DIR=$tmp
cleanup() {
  up_cleanup
  up_kill_vendor_leftovers "$tmp"
  tt_etcd_stop
  rm -rf "$tmp"
}
trap cleanup EXIT

tt_etcd_start
ec put da.skylar.rate_limit.enable false >/dev/null
ec put styx.rate_limit.max_request_per_unit 100 >/dev/null
KEYS0="false - 100 - -"
ns=tc
TT_APPS=tc-apps
kubectl create namespace "$ns" >/dev/null
kubectl create namespace "$TT_APPS" >/dev/null
tt_deploy "$TT_APPS" styx-file-assessment-go \
  '{"name": "styx-file-assessment-go", "image": "styx:1", "args": ["-config.ns=styx", "-port=8080", "-control.type=none"]}'
tt_deploy "$TT_APPS" edge2 '{"name": "edge2", "image": "edge2:1", "args": ["-v=2", "-edge2_max_clientnum=10"]}'
"$TQU_REPO/tests/fixtures/set-rollout.sh" "$TT_APPS" --all >/dev/null
styx0=$(tt_args "$TT_APPS" styx-file-assessment-go); edge0=$(tt_args "$TT_APPS" edge2)
tqt() { kubectl -n "$ns" get tqt "$1" -o json; }
up_kubelet_start

# ------------------------------------- 1. kill -9 between etcd and the patch
kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tqt-no-deployment-patch}
rules:
- {apiGroups: ["", "upgrade.tianqing.io", "coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io"], resources: ["*"], verbs: ["*"]}
- {apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tqt-no-deployment-patch}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tqt-no-deployment-patch}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: tqt-no-patch}]
EOF
kc=$("$TQU_CLUSTER_SH" issue-cert "$TQU_CLUSTER_DIR" tqt-no-patch tqt-no-patch tqt-no-patch-group 2>"$tmp/issue.err")
[ -s "$kc" ] || { e2e_not_ok "a certificate for tqt-no-patch" "$(cat "$tmp/issue.err")"; e2e_summary; exit 1; }
UP_KUBECONFIG=$kc up_controller c1
tt_apply "$ns" crash >/dev/null
if e2e_eventually 40 grep -q 'cannot patch Deployment' "$tmp/c1.log"; then
  e2e_ok "the first controller wrote the etcd keys and its Deployment patch was refused"
else
  e2e_not_ok "the first controller reached the Deployment patch" "$(tail -n 20 "$tmp/c1.log")"
fi
up_stop c1 KILL
e2e_eq "killed -9 there: the keys written" "true 500 300 3000 20G" "$(tt_keys)"
e2e_eq "... no argument changed yet" "$styx0 $edge0" "$(tt_args "$TT_APPS" styx-file-assessment-go) $(tt_args "$TT_APPS" edge2)"
json=$(tqt crash)
e2e_eq "... Apply was running" "Backup=Succeeded Apply=Running" \
  "$(jq -r '[.status.steps[] | select(.name=="Backup" or .name=="Apply") | "\(.name)=\(.state)"] | join(" ")' <<<"$json")"
folder=$(jq -r .status.backupFolder <<<"$json")
sum0=$(sha256sum "$folder/originals.json" 2>/dev/null | cut -d' ' -f1)
files0=$(cd "$folder" 2>/dev/null && ls | tr '\n' ' ')
e2e_eq "the originals were saved before the etcd write" "false absent 100" \
  "$(jq -r '[."etcd:da.skylar.rate_limit.enable", ."etcd:da.skylar.rate_limit.max_request_per_unit", ."etcd:styx.rate_limit.max_request_per_unit"] | join(" ")' "$folder/originals.json" 2>/dev/null)"

# resumed with no kubelet: Verify waits for the two rollouts
up_kubelet_stop
up_controller c2
verify_waits() { tqt crash | jq -e '.status.steps[] | select(.name=="Verify" and .state=="Running" and (.message | test("waiting for 2 Deployments")))' >/dev/null; }
if e2e_eventually 30 verify_waits; then
  e2e_ok "a controller with the full grant resumes: the patches made, Verify waits for the rollouts"
else
  e2e_not_ok "a controller with the full grant resumes: Verify waits" "$(tt_state "$ns" crash)" "$(tqt crash | jq -c '.status.steps')"
fi
e2e_eq "the arguments set" '["-config.ns=styx","-port=8080","-control.type=config"] ["-v=2","-edge2_max_clientnum=1000"]' \
  "$(tt_args "$TT_APPS" styx-file-assessment-go) $(tt_args "$TT_APPS" edge2)"

# ------------------------------------- 2. a Deployment replaced mid-way (Verify waits)
uid0=$(kubectl -n "$TT_APPS" get deploy styx-file-assessment-go -o jsonpath='{.metadata.uid}')
kubectl -n "$TT_APPS" delete deploy styx-file-assessment-go --wait=true >/dev/null
tt_deploy "$TT_APPS" styx-file-assessment-go \
  '{"name": "styx-file-assessment-go", "image": "styx:2", "args": ["-config.ns=styx", "-port=8080", "-control.type=none", "-new=1"]}'
uid1=$(kubectl -n "$TT_APPS" get deploy styx-file-assessment-go -o jsonpath='{.metadata.uid}')
[ "$uid0" != "$uid1" ] && e2e_ok "styx's Deployment replaced by the vendor's (a new uid)" || e2e_not_ok "styx's Deployment replaced" "$uid0 $uid1"
up_kubelet_start
if kubectl -n "$ns" wait --for=condition=Ready tqt/crash --timeout=40s >/dev/null 2>&1 &&
   e2e_eventually 20 bash -c "kubectl -n $TT_APPS get deploy styx-file-assessment-go -o json | jq -e '.spec.template.spec.containers[0].args | index(\"-control.type=config\")' >/dev/null"; then
  e2e_ok "Ready, the new Deployment corrected"
else
  e2e_not_ok "Ready, the new Deployment corrected" "$(tt_state "$ns" crash)" "$(tt_args "$TT_APPS" styx-file-assessment-go)"
fi
e2e_eq "the new Deployment: -control.type=config in place, the vendor's new argument kept" \
  '["-config.ns=styx","-port=8080","-control.type=config","-new=1"]' "$(tt_args "$TT_APPS" styx-file-assessment-go)"
json=$(tqt crash)
e2e_eq "no second backup: Backup ran once, originals.json byte for byte, the same files, one folder" \
  "1 $sum0 $files0 1" \
  "$(jq -r '.status.steps[] | select(.name=="Backup") | .attempts' <<<"$json") $(sha256sum "$folder/originals.json" | cut -d' ' -f1) $(cd "$folder" && ls | tr '\n' ' ') $(ls "$tmp/backups" | wc -l)"
e2e_eq "the originals are those before the crash, not the values written" \
  "false|absent|-control.type=none|100|-edge2_max_clientnum=10|absent|absent" \
  "$(jq -r '[.status.items[].original] | join("|")' <<<"$json")"

e2e_eq "the manifest saved before is the first Deployment's (uid)" \
  "$uid0" "$(jq -r .metadata.uid "$folder/deployment.$TT_APPS.styx-file-assessment-go.json")"

# ------------------------------------- 3. while an Upgrade step runs
up_secret "$ns"
kubectl apply -f "$TQU_REPO/tests/fixtures/cluster-objects.yaml" >/dev/null
"$TQU_REPO/tests/fixtures/set-rollout.sh" --all >/dev/null
up_case_tree "$tmp" up --scenario update_seconds=10
UP_DIR=$tmp
# its backups inside the case tree (an allowed root of the controllers)
UP_DIR=$tmp/c/up up_apply "$ns" up
launched() { [ "$(kubectl -n "$ns" get tqu up -o json | jq -r '.status.steps[]? | select(.name=="Upgrade") | .state')" = Running ]; }
if e2e_eventually 60 launched; then e2e_ok "a TianqingUpgrade's Upgrade step runs"
else e2e_not_ok "a TianqingUpgrade's Upgrade step runs" "$(up_steps_text "$ns" up)"; fi
ec put styx.rate_limit.max_request_per_unit 7 >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingTuning
metadata: {name: waiter, namespace: $ns}
spec:
  etcd: {endpoints: ["$TT_URL"], keyPrefix: zz}
  rateLimit: {global: {enabled: true, maxRequestPerUnit: 9}}
  backupDir: $tmp/backups
EOF
tt_wait_state 30 "$ns" waiter "Waiting UpgradeInProgress"
e2e_eq "a new tuning waits: Waiting, UpgradeInProgress" "Waiting UpgradeInProgress" "$(tt_state "$ns" waiter)"
tt_wait_state 20 "$ns" crash "Waiting UpgradeInProgress"
e2e_eq "the kept one, told of a change, waits too" "Waiting UpgradeInProgress" "$(tt_state "$ns" crash)"
if launched; then
  e2e_eq "while the Upgrade step runs: the value changed back is left alone, the new one's keys not written" \
    "7 - -" "$(tt_val styx.rate_limit.max_request_per_unit) $(tt_val zz.rate_limit.enable) $(tt_val zz.rate_limit.max_request_per_unit)"
else
  e2e_not_ok "the Upgrade step still ran when checked (update.sh runs 10 s)" "$(up_steps_text "$ns" up)"
fi
e2e_eventually 60 bash -c "! kubectl -n $ns get tqu up -o json | jq -e '.status.steps[] | select(.name==\"Upgrade\" and .state==\"Running\")' >/dev/null"
t0=$(date +%s)
if kubectl -n "$ns" wait --for=condition=Ready tqt/waiter tqt/crash --timeout=25s >/dev/null 2>&1; then
  e2e_ok "the Upgrade step ended: both apply again ($(( $(date +%s) - t0 )) s after; not the 30 s re-check)"
else
  e2e_not_ok "the Upgrade step ended: both apply again" "$(tt_state "$ns" waiter) / $(tt_state "$ns" crash)"
fi
e2e_eq "... the keys at their desired values" "300 true 9" \
  "$(tt_val styx.rate_limit.max_request_per_unit) $(tt_val zz.rate_limit.enable) $(tt_val zz.rate_limit.max_request_per_unit)"

# ------------------------------------- deleted: the originals back
kubectl -n "$ns" delete tqu up --wait=false >/dev/null 2>&1
e2e_check "deleting the tunings puts the originals back" kubectl -n "$ns" delete tqt crash waiter --timeout=60s
e2e_eq "every key as before (absent ones absent again)" "$KEYS0 - -" \
  "$(tt_keys) $(tt_val zz.rate_limit.enable) $(tt_val zz.rate_limit.max_request_per_unit)"
e2e_eq "the arguments as before (the replaced Deployment: its own args kept, the original put back)" \
  '["-config.ns=styx","-port=8080","-control.type=none","-new=1"] ["-v=2","-edge2_max_clientnum=10"]' \
  "$(tt_args "$TT_APPS" styx-file-assessment-go) $(tt_args "$TT_APPS" edge2)"

if [ "$E2E_FAILED" != 0 ]; then
  kubectl -n "$ns" get tqt -o yaml 2>/dev/null | sed 's/^/#   /' | head -60
  grep -E '"level":"(info|warn|error)"' "$tmp/c2.log" | grep -v tianqingupgrades | sed 's/^/#   /' | tail -60
fi
e2e_check_fails "no sanitizer report in the controllers' logs" grep -qE 'AddressSanitizer|runtime error:' "$tmp/c1.log" "$tmp/c2.log"
up_stop c2
e2e_summary
exit $?
