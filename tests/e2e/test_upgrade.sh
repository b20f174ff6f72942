#!/usr/bin/env bash
# A whole upgrade on the real control plane, followed the way an operator
# does: kubectl apply, kubectl wait --for=condition=Ready, kubectl describe.
# Checks the backups, the exact argv and working directories the vendor
# tools received, the sabre cleanup, the cdn tuning and its drift
# correction, Events, and that the SSH password appears nowhere.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
trap 'up_cleanup; rm -rf "$tmp"' EXIT

ns=tqu-happy
up_world "$tmp" || { e2e_not_ok "fixtures"; e2e_summary; exit 1; }
up_secret "$ns"
up_kubelet_start
up_controller ctl
up_apply "$ns" to-2800

e2e_check "kubectl wait --for=condition=Ready succeeds" \
  kubectl -n "$ns" wait --for=condition=Ready tqu/to-2800 --timeout=120s
e2e_eq "phase Succeeded" Succeeded "$(up_phase "$ns" to-2800)"
json=$(kubectl -n "$ns" get tqu to-2800 -o json)
e2e_eq "every step Succeeded, in order" \
  "Validate=Succeeded Preflight=Succeeded BackupDeployments=Succeeded PaasCheck=Succeeded SabreCleanup=Succeeded Upgrade=Succeeded CdnTuning=Succeeded Verify=Succeeded" \
  "$(jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")' <<<"$json")"
e2e_eq "observedGeneration is the generation" "$(jq .metadata.generation <<<"$json")" \
  "$(jq .status.observedGeneration <<<"$json")"
e2e_eq "Ready=True, Reconciling=False, Stalled=False" "True False False" \
  "$(jq -r '[.status.conditions[] | select(.type=="Ready" or .type=="Reconciling" or .type=="Stalled")] | sort_by(.type) | [.[0].status, .[1].status, .[2].status] | join(" ")' <<<"$json" | awk '{print $1, $2, $3}')"

desc=$(kubectl -n "$ns" describe tqu to-2800)
for step in Validate Preflight BackupDeployments PaasCheck SabreCleanup Upgrade CdnTuning Verify; do
  e2e_match "describe shows step $step" "Name: +$step" "$desc"
done
for ev in StepStarted StepSucceeded UpgradeStarted UpgradeSucceeded; do
  e2e_match "describe shows Event $ev" "Normal +$ev" "$desc"
done
e2e_match "printer columns: FROM TO PHASE STEP" "to-2800 +10.6.0.2600 +10.7.0.2800 +Succeeded" \
  "$(kubectl -n "$ns" get tqu)"

# ------------------------------------------------------------- backups
folder=$(jq -r .status.backup.folder <<<"$json")
list=$(jq -r .status.backup.listFile <<<"$json")
manifests=$(jq -r .status.backup.manifestsFile <<<"$json")
e2e_check "backup list file exists" test -s "$list"
e2e_check "backup manifests file exists" test -s "$manifests"
e2e_eq "list sha256 matches status" "$(jq -r .status.backup.listSha256 <<<"$json")" "$(sha256sum "$list" | cut -d' ' -f1)"
e2e_eq "manifests sha256 matches status" "$(jq -r .status.backup.manifestsSha256 <<<"$json")" \
  "$(sha256sum "$manifests" | cut -d' ' -f1)"
count=$(jq -r .status.backup.deploymentCount <<<"$json")
e2e_eq "manifests hold every Deployment (as counted)" "$count" "$(jq '.items | length' "$manifests")"
e2e_eq "list has one line per Deployment" "$count" "$(wc -l < "$list" | tr -d ' ')"
e2e_match "the list includes sabre-server as it was before its deletion" "^default-sabre-server +sabre-server " "$(cat "$list")"
e2e_eq "one backup, not duplicated" 1 "$(find "$folder" -maxdepth 1 -name 'deploy_*.json' | wc -l)"

# ------------------------------------------------- what the tools received
rec=$TQU_FAKE_RECORD
n=$(grep -l -- '--actions=paas_check' "$rec"/darwin-client.*.argv | head -n1)
e2e_eq "darwin-client got exactly the runbook's paas_check argv" \
  "install --data.source=local --execute.type=k8s --template.file=$TEMPLATE --actions=paas_check" \
  "$(paste -sd' ' "$n")"
e2e_eq "darwin-client ran in the old package's tq_saas" "$OLD_DIR/tq_saas" "$(cat "${n%.argv}.cwd")"
e2e_eq "update.sh ran exactly once" 1 "$(cat "$rec/update.sh.calls")"
e2e_eq "update.sh got exactly the runbook's argv (password as ***)" \
  "-s $OLD_DIR -n $NEW_DIR -t $TEMPLATE -u root -P *** -p 22 -d $QAXDATA" \
  "$(paste -sd' ' "$rec/update.sh.1.argv")"
e2e_eq "update.sh ran in the new package's plan_client" \
  "$NEW_DIR/tq_paas/skylar/skylar_linuxserver_client/plan_client" "$(cat "$rec/update.sh.1.cwd")"
e2e_eq "update.sh got the Secret's password" "$(printf %s "$UP_PASSWORD" | sha256sum | cut -d' ' -f1)" \
  "$(cat "$rec/update.sh.1.password.sha256")"

# --------------------------------------------------------------- sabre
e2e_check_fails "sabre-server Deployment deleted" kubectl -n default-sabre-server get deploy sabre-server
e2e_check_fails "sabre-server-service deleted" kubectl -n default-sabre-server get svc sabre-server-service
e2e_eq "sabre Deployment manifest saved first" sabre-server \
  "$(jq -r .metadata.name "$folder/sabre-server.deployment.json")"
e2e_eq "sabre Service manifest saved first" sabre-server-service \
  "$(jq -r .metadata.name "$folder/sabre-server-service.service.json")"

# ---------------------------------------------------------------- cdn
check_tuned() {
  local d
  d=$(kubectl -n default get deploy darwin-cdn -o json)
  jq -e '.spec.template.spec.volumes[] | select(.name=="darwin-cdn-data")
         | .hostPath.type=="DirectoryOrCreate" and .hostPath.path=="/qaxdata/s/services/data/darwin-cdn-data"' <<<"$d" >/dev/null &&
  jq -e '.spec.template.spec.containers[] | select(.name=="darwin-cdn") | .volumeMounts[]
         | select(.name=="darwin-cdn-data") | .mountPath=="/home/s/darwin-cdn/data/"' <<<"$d" >/dev/null &&
  jq -e '.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[]
         | .topologyKey=="kubernetes.io/hostname" and
           (.labelSelector.matchExpressions[] | .key=="app" and .operator=="In" and .values==["darwin-cdn"])' <<<"$d" >/dev/null
}
e2e_check "darwin-cdn tuned: hostPath DirectoryOrCreate at /home/s/darwin-cdn/data/, anti-affinity on app=darwin-cdn" check_tuned
e2e_eq "darwin-cdn's other container kept" "darwin-cdn log-agent" \
  "$(kubectl -n default get deploy darwin-cdn -o json | jq -r '[.spec.template.spec.containers[].name] | join(" ")')"
e2e_check "darwin-cdn manifest saved before the patch" test -s "$folder/darwin-cdn.before-tuning.json"

# drift: the untuned original comes back; the controller corrects it
kubectl replace -f "$TQU_FAKE_HOME/darwin-cdn-untuned.yaml" >/dev/null
if e2e_eventually 30 check_tuned; then e2e_ok "untuned darwin-cdn put back: tuned again"
else e2e_not_ok "untuned darwin-cdn put back: tuned again" "$(kubectl -n default get deploy darwin-cdn -o yaml)"; fi
e2e_eventually 10 bash -c "kubectl -n $ns get events -o json | jq -e '.items[] | select(.reason==\"CdnTuningRestored\")' >/dev/null"
e2e_match "a CdnTuningRestored Event says so" "CdnTuningRestored" "$(kubectl -n "$ns" get events)"

# -------------------------------------------------- the password nowhere
ctl_pid=$(up_pid ctl)
hay=$tmp/haystack
{
  cat "$UP_DIR"/ctl.log
  kubectl -n "$ns" get tqu to-2800 -o json
  kubectl -n "$ns" get events -o json
  tr '\0' ' ' < "/proc/$ctl_pid/cmdline"
} > "$hay" 2>/dev/null
e2e_check_fails "password not in logs, status, plan, Events or the controller's cmdline" \
  grep -aF -- "$UP_PASSWORD" "$hay"
e2e_check_fails "password not in the controller's files (backups, state, logs)" \
  grep -raF -- "$UP_PASSWORD" "$UP_DIR/backups"
e2e_match "status.upgrade.command shows the password as ***" "-P \*\*\* " "$(jq -r .status.upgrade.command <<<"$json")"
e2e_match "status.plan shows the update.sh command with '***'" "-P '\*\*\*'" \
  "$(jq -r '.status.plan[] | select(.step=="Upgrade") | .target' <<<"$json")"

up_stop ctl
e2e_summary
exit $?
