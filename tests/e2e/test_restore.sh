#!/usr/bin/env bash
# TianqingRestore on the real control plane, after a whole upgrade with
# fake vendor tools (paas_check=edr, so PaasCheck edits update.sh and keeps
# its original):
#   - the upgrade records every kept file with its sha256 (status.backup.files);
#   - a dry run of sabre, cdn and updateScript changes nothing and lists,
#     per object, the fields that differ;
#   - a corrupted backup file (one byte appended) is refused: Failed
#     BackupCorrupt, nothing changed;
#   - the real restore gives back the sabre Deployment and Service and
#     darwin-cdn as they were before the upgrade (field by field, server-set
#     fields aside) and update.sh byte for byte, each saved first; the
#     upgrade does not tune darwin-cdn again;
#   - a restore while an upgrade's update.sh runs is Blocked VendorCommandRunning.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
T0=$(date +%s)
trap 'up_cleanup_cases "$tmp"' EXIT

ns=tqr-e2e
# kubectl get as JSON with the server-set fields stripped, as the restore does
strip='del(.metadata.uid, .metadata.resourceVersion, .metadata.generation, .metadata.creationTimestamp,
           .metadata.managedFields, .metadata.selfLink, .status,
           .metadata.annotations["deployment.kubernetes.io/revision"])
       | if .metadata.annotations == {} then del(.metadata.annotations) else . end
       | if .kind == "Service" then del(.spec.clusterIP, .spec.clusterIPs) else . end'
obj() { kubectl -n "$1" get "$2" "$3" -o json | jq -S "$strip"; }
tqr_state() {  # "<phase> <reason>"
  kubectl -n "$1" get tqr "$2" -o json 2>/dev/null | jq -r '"\(.status.phase // "") \(
    [.status.conditions[]? | select(.type=="Stalled" and .status=="True") | .reason][0]
    // [.status.conditions[]? | select(.type=="Ready") | .reason][0] // "")"'
}
tqr_at() { [ "$(tqr_state "$1" "$2")" = "$3" ]; }
check_tqr() {  # SECONDS NS NAME STATE DESC
  if e2e_eventually "$1" tqr_at "$2" "$3" "$4"; then e2e_ok "$5"
  else e2e_not_ok "$5" "state: $(tqr_state "$2" "$3")" \
    "$(kubectl -n "$2" get tqr "$3" -o json | jq -c '{steps: [.status.steps[]? | "\(.name)=\(.state): \(.message)"]}')"; fi
}
apply_tqr() {  # NS NAME UPGRADE [EXTRA SPEC LINES]
  kubectl apply -f - >/dev/null <<YAML
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingRestore
metadata: {name: $2, namespace: $1}
spec:
  upgradeRef: {name: $3}
${4:-}
YAML
}
nothing_changed() {  # the state after the upgrade, untouched
  up_sabre_gone && up_cdn_tuned && grep -q -- 'execute.type=k8s --paas.check=false' "$UPDATE_SH"
}

# ------------------------------------------------------------ the upgrade
up_case_tree "$tmp" main --scenario paas_check=edr || { e2e_not_ok "fixtures"; e2e_summary; exit 1; }
kubectl apply -f "$TQU_REPO/tests/fixtures/cluster-objects.yaml" >/dev/null
"$TQU_REPO/tests/fixtures/set-rollout.sh" --all >/dev/null
obj default-sabre-server deploy sabre-server > "$tmp/sabre.before.json"
obj default-sabre-server svc sabre-server-service > "$tmp/sabre-svc.before.json"
obj default deploy darwin-cdn > "$tmp/cdn.before.json"
cp -p "$UPDATE_SH" "$tmp/update.sh.before"
up_secret "$ns"
up_kubelet_start
# every case's tree below $tmp is inside the allowed roots
up_controller ctl --allowed-root "$tmp" --allowed-root /qaxdata && ctl_log=$UP_DIR/ctl.log || { e2e_not_ok "controller started" "$(tail -n 20 "$UP_DIR/ctl.log")"; e2e_summary; exit 1; }
up_apply "$ns" up
up_check_state 120 "$ns" up "Succeeded UpgradeSucceeded" "the upgrade (paas_check=edr) Succeeded"
ujson=$(kubectl -n "$ns" get tqu up -o json)
e2e_check_fails "the upgrade edited update.sh (its PaaS check off)" cmp -s "$tmp/update.sh.before" "$UPDATE_SH"
e2e_eq "status.backup.files: every kept file recorded" \
  "darwin-cdn.before-tuning.json sabre-server-service.service.json sabre-server.deployment.json update.sh" \
  "$(jq -r '[.status.backup.files[].name] | sort | join(" ")' <<<"$ujson")"
bad_sums=''
while read -r name path sum; do
  [ "$(sha256sum "$path" | cut -d' ' -f1)" = "$sum" ] || bad_sums="$bad_sums $name"
done < <(jq -r '.status.backup.files[] | "\(.name) \(.path) \(.sha256)"' <<<"$ujson")
e2e_eq "status.backup.files: each sha256 is its file's" "" "$bad_sums"
e2e_eq "the kept update.sh is the original, its target the edited one" \
  "$(sha256sum < "$tmp/update.sh.before" | cut -d' ' -f1) $(realpath "$UPDATE_SH")" \
  "$(jq -r '.status.backup.files[] | select(.name=="update.sh") | "\(.sha256) \(.target)"' <<<"$ujson")"
folder=$(jq -r .status.backup.folder <<<"$ujson")

# ---------------------------------------------------------------- dry run
apply_tqr "$ns" undo up
check_tqr 30 "$ns" undo "Succeeded DryRunComplete" "dry run (the default): Succeeded DryRunComplete"
rjson=$(kubectl -n "$ns" get tqr undo -o json)
plan=$(jq -r '.status.plan[] | "\(.action) \(.target)"' <<<"$rjson")
e2e_match "plan: create the sabre Deployment" "^create Deployment default-sabre-server/sabre-server$" "$plan"
e2e_match "plan: create the sabre Service" "^create Service default-sabre-server/sabre-server-service$" "$plan"
e2e_match "plan: replace darwin-cdn" "^replace Deployment default/darwin-cdn$" "$plan"
e2e_match "plan: write update.sh back" "^write $(realpath "$UPDATE_SH")$" "$plan"
e2e_eq "plan: darwin-cdn's differing fields are the tuning, server-set fields aside" \
  "spec.template.spec.affinity spec.template.spec.containers[0].volumeMounts spec.template.spec.volumes" \
  "$(jq -r '.status.plan[] | select(.target=="Deployment default/darwin-cdn") | .paths | sort | join(" ")' <<<"$rjson")"
e2e_eq "dry run: Validate and Plan Succeeded, Apply and Verify not run" \
  "Validate=Succeeded Plan=Succeeded Apply=Pending Verify=Pending" \
  "$(jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")' <<<"$rjson")"
e2e_check "dry run: nothing changed (sabre gone, darwin-cdn tuned, update.sh edited)" nothing_changed
e2e_eq "dry run: no restore folder written" "" "$(find "$(dirname "$folder")" -maxdepth 1 -name '*.restore')"
e2e_eq "the CRD's defaults: every target, no Deployment list, dryRun true" \
  '{"cdn":true,"deployments":[],"sabre":true,"updateScript":true} true' \
  "$(jq -c -S .spec.targets <<<"$rjson") $(jq -r .spec.dryRun <<<"$rjson")"
kubectl create namespace tianqing-upgrade >/dev/null 2>&1
e2e_check "manifests/samples/tianqingrestore.yaml is accepted (server dry run)" \
  kubectl apply --dry-run=server -f "$TQU_REPO/manifests/samples/tianqingrestore.yaml"
out=$(apply_tqr "$ns" bad-target up '  targets: {deployments: ["nonamespace"]}' 2>&1)
e2e_match "the CRD refuses a deployments entry that is not namespace/name" 'spec.targets.deployments' "$out"
e2e_match "printer columns at -o wide: PHASE STEP AGE MESSAGE" \
  "undo +up +true +Succeeded +[^ ]+ +.*dry run complete" "$(kubectl -n "$ns" get tqr -o wide)"

# -------------------------------------------------- a corrupted backup file
kept=$folder/darwin-cdn.before-tuning.json
cp -p "$kept" "$tmp/kept.json"
printf ' ' >> "$kept"
apply_tqr "$ns" corrupt up "  dryRun: false"
check_tqr 30 "$ns" corrupt "Failed BackupCorrupt" "a file with one byte appended: Failed BackupCorrupt"
e2e_match "BackupCorrupt: the message names the file and both checksums" \
  "darwin-cdn\.before-tuning\.json has sha256 [0-9a-f]{64}, the upgrade recorded [0-9a-f]{64}" \
  "$(kubectl -n "$ns" get tqr corrupt -o jsonpath='{.status.message}')"
sleep 1
e2e_check "BackupCorrupt: nothing changed" nothing_changed
cp -p "$tmp/kept.json" "$kept"
kubectl -n "$ns" delete tqr corrupt >/dev/null

# ------------------------------------------------------------ the restore
kubectl -n "$ns" patch tqr undo --type merge -p '{"spec":{"dryRun":false}}' >/dev/null
check_tqr 60 "$ns" undo "Succeeded RestoreSucceeded" "dryRun: false: the restore Succeeded"
rjson=$(kubectl -n "$ns" get tqr undo -o json)
e2e_eq "every step Succeeded" "Validate=Succeeded Plan=Succeeded Apply=Succeeded Verify=Succeeded" \
  "$(jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")' <<<"$rjson")"
e2e_eq "the sabre Deployment is back, as before the upgrade" "$(cat "$tmp/sabre.before.json")" \
  "$(obj default-sabre-server deploy sabre-server 2>&1)"
e2e_eq "the sabre Service is back, as before the upgrade" "$(cat "$tmp/sabre-svc.before.json")" \
  "$(obj default-sabre-server svc sabre-server-service 2>&1)"
e2e_eq "darwin-cdn is back, as before the upgrade" "$(cat "$tmp/cdn.before.json")" "$(obj default deploy darwin-cdn)"
e2e_check "update.sh is the original, byte for byte" cmp "$tmp/update.sh.before" "$UPDATE_SH"
e2e_eq "status.restored lists what Apply changed" \
  "Deployment default-sabre-server/sabre-server created,Service default-sabre-server/sabre-server-service created,Deployment default/darwin-cdn replaced" \
  "$(jq -r '[.status.restored[] | "\(.kind) \(.namespace)/\(.name) \(.action)"] | join(",")' <<<"$rjson")"
rdir=$(jq -r .status.backup.folder <<<"$rjson")
e2e_check "darwin-cdn was saved, tuned, before it was replaced" \
  jq -e '.spec.template.spec.affinity.podAntiAffinity != null' "$rdir/Deployment.default.darwin-cdn.before-restore.json"
e2e_check "the edited update.sh was kept before it was written back" \
  grep -q -- '--paas.check=false' "$rdir/update.sh.before-restore"
e2e_eq "status.backup.files of the restore: each sha256 is its file's" "" \
  "$(jq -r '.status.backup.files[] | "\(.sha256)  \(.path)"' <<<"$rjson" | sha256sum -c --quiet 2>&1)"
e2e_eq "the upgrade is annotated: it no longer keeps darwin-cdn tuned" undo \
  "$(kubectl -n "$ns" get tqu up -o jsonpath='{.metadata.annotations.upgrade\.tianqing\.io/cdn-restored-by}')"
"$TQU_REPO/tests/fixtures/set-rollout.sh" default darwin-cdn >/dev/null   # an event on the watched darwin-cdn
sleep 3
e2e_check "darwin-cdn stays as restored (the upgrade does not tune it again)" up_cdn_untouched

# -------------------------------------- refused while update.sh runs
ns2=tqr-e2e-busy
up_case_tree "$tmp" busy --scenario update_seconds=40
up_secret "$ns2"
up_apply "$ns2" slow "  initialVersion: 10.5.0.3000"
running() { [ -n "$(kubectl -n "$ns2" get tqu slow -o jsonpath='{.status.upgrade.pid}')" ]; }
if e2e_eventually 60 running; then e2e_ok "a second upgrade's update.sh runs (40 s)"
else e2e_not_ok "a second upgrade's update.sh runs (40 s)" "$(up_steps_text "$ns2" slow)"; fi
apply_tqr "$ns2" busy slow "  dryRun: false"
check_tqr 30 "$ns2" busy "Blocked VendorCommandRunning" "a restore while update.sh runs: Blocked VendorCommandRunning"
e2e_match "VendorCommandRunning: the message says how to go on" "waits until it has ended" \
  "$(kubectl -n "$ns2" get tqr busy -o jsonpath='{.status.message}')"
e2e_eq "VendorCommandRunning: Apply not started" Pending \
  "$(kubectl -n "$ns2" get tqr busy -o json | jq -r '.status.steps[] | select(.name=="Apply") | .state')"

e2e_check_fails "no sanitizer report in the controller log" grep -E 'AddressSanitizer|runtime error:' "$ctl_log"
up_stop ctl
echo "# run time: $(( $(date +%s) - T0 )) s"
e2e_summary
exit $?
