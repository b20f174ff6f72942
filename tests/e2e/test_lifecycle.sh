#!/usr/bin/env bash
# The life cycle of a TianqingUpgrade beyond the happy path, with one
# controller, each part in its own namespace and fake /qaxdata tree:
#   - dryRun: true: Succeeded/DryRunComplete, status.plan lists every
#     command and API change (secrets as ***), and nothing changes; then
#     dryRun: false: the real run completes;
#   - paused: true: Paused before the first step with nothing done; resumed;
#     paused again while update.sh runs: the running step is followed to
#     its end and the next one does not start; resumed again;
#   - a failed upgrade is final (a metadata-only change does not retry it);
#     a new generation runs the checks again and retries from the failed
#     step (the backup not redone) and succeeds: update.sh ran once per
#     generation; status.history[] shows both attempts;
#   - the finalizer upgrade.tianqing.io/vendor-process is there while
#     update.sh runs, and kubectl delete waits until it has finished;
#   - Verify: a Deployment that never becomes available with
#     timeouts.verify: 5s fails VerifyTimedOut, naming it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
T0=$(date +%s)
FIX=$TQU_REPO/tests/fixtures

trap 'up_cleanup_cases "$tmp"' EXIT

# ------------------------------------------------------------------ helpers
step_state() { kubectl -n "$1" get tqu "$2" -o json | jq -r --arg s "$3" '.status.steps[] | select(.name==$s) | .state'; }
launched() {  # update.sh started: status.upgrade.pid recorded, step Running
  [ -n "$(kubectl -n "$1" get tqu "$2" -o jsonpath='{.status.upgrade.pid}')" ] &&
    [ "$(step_state "$1" "$2" Upgrade)" = Running ]
}
attempts_text() { kubectl -n "$1" get tqu "$2" -o json | jq -r '[.status.steps[] | "\(.name)=\(.attempts)"] | join(" ")'; }
delete_tqu() { kubectl -n "$1" delete tqu "$2" --ignore-not-found --wait=true --timeout=90s >/dev/null; }

UP_DIR=$tmp
kubectl apply -f "$FIX/cluster-objects.yaml" >/dev/null
"$FIX/set-rollout.sh" --all >/dev/null
up_kubelet_start
up_controller ctl || { e2e_not_ok "controller started" "$(tail -n 20 "$tmp/ctl.log")"; e2e_summary; exit 1; }

# ================================================================ dry run
ns=tqu-l-dryrun
up_case_tree "$tmp" dryrun
up_secret "$ns"
up_apply "$ns" dry "  dryRun: true"
up_check_state 30 "$ns" dry "Succeeded DryRunComplete" "dry run: phase Succeeded, reason DryRunComplete"
json=$(kubectl -n "$ns" get tqu dry -o json)
plan=$(jq -r '.status.plan[] | "\(.step) \(.action) \(.target)"' <<<"$json")
e2e_match "dry run: the message says nothing was changed" "nothing was changed" "$(jq -r .status.message <<<"$json")"
e2e_match "plan: the backup list file" "^BackupDeployments write .*/deploy_<time>\.log$" "$plan"
e2e_match "plan: the backup manifests file" "^BackupDeployments write .*/deploy_<time>\.json$" "$plan"
e2e_match "plan: the darwin-client paas_check command" \
  "^PaasCheck run \./darwin-client install --data\.source=local --execute\.type=k8s --template\.file=$TEMPLATE --actions=paas_check$" "$plan"
e2e_match "plan: the possible update.sh edit (EDR off)" "^PaasCheck edit $UPDATE_SH$" "$plan"
e2e_match "plan: delete Deployment sabre-server (initialVersion < 10.5.0.3000)" \
  "^SabreCleanup delete Deployment default-sabre-server/sabre-server$" "$plan"
e2e_match "plan: delete Service sabre-server-service" \
  "^SabreCleanup delete Service default-sabre-server/sabre-server-service$" "$plan"
e2e_match "plan: the update.sh command line, password as '***'" \
  "^Upgrade run sh update\.sh -s $OLD_DIR -n $NEW_DIR -t $TEMPLATE -u root -P '\*\*\*' -p 22 -d $QAXDATA$" "$plan"
e2e_match "plan: the darwin-cdn patch" "^CdnTuning patch Deployment default/darwin-cdn$" "$plan"
e2e_match "plan: ... with the hostPath volume and the anti-affinity" \
  "hostPath volume darwin-cdn-data \(DirectoryOrCreate\).*anti-affinity" \
  "$(jq -r '.status.plan[] | select(.step=="CdnTuning") | .detail' <<<"$json")"
e2e_match "plan: the Verify wait" "^Verify wait every Deployment$" "$plan"
e2e_check_fails "plan: no password" grep -qF -- "$UP_PASSWORD" <<<"$(jq -c .status <<<"$json")"
e2e_eq "dry run: Validate and Preflight Succeeded, the rest Pending" \
  "Validate=Succeeded Preflight=Succeeded BackupDeployments=Pending PaasCheck=Pending SabreCleanup=Pending Upgrade=Pending CdnTuning=Pending Verify=Pending" \
  "$(up_steps_text "$ns" dry)"
e2e_eq "dry run: the steps not run say so" 6 \
  "$(jq '[.status.steps[] | select(.message=="not run: dry run (see status.plan)")] | length' <<<"$json")"
e2e_eq "dry run: update.sh never ran" 0 "$(up_update_calls)"
e2e_eq "dry run: the PaaS check did not run" 0 "$(up_paas_calls)"
e2e_check "dry run: sabre objects still there" up_sabre_present
e2e_check "dry run: darwin-cdn untouched" up_cdn_untouched
e2e_eq "dry run: no state or backup files" 0 "$(find "$UP_DIR/backups" -type f 2>/dev/null | wc -l)"
e2e_check_fails "dry run: update.sh not edited" grep -q -- 'execute.type=k8s --paas.check=false' "$UPDATE_SH"
e2e_eventually 5 bash -c "kubectl -n $ns get events -o json | jq -e '.items[] | select(.reason==\"DryRunComplete\")' >/dev/null"
e2e_match "dry run: a DryRunComplete Event" DryRunComplete "$(kubectl -n "$ns" get events)"

# a dry run of an environment first installed at 10.5.0.3000 or later: no sabre deletes
up_apply "$ns" dry-new "  dryRun: true
  initialVersion: 10.5.0.3000"
up_check_state 30 "$ns" dry-new "Succeeded DryRunComplete" "dry run (initialVersion 10.5.0.3000): DryRunComplete"
e2e_eq "plan (initialVersion 10.5.0.3000): no SabreCleanup entries" 0 \
  "$(kubectl -n "$ns" get tqu dry-new -o json | jq '[.status.plan[] | select(.step=="SabreCleanup")] | length')"
delete_tqu "$ns" dry-new

# dryRun: false: the real run
kubectl -n "$ns" patch tqu dry --type merge -p '{"spec":{"dryRun":false}}' >/dev/null
up_check_state 60 "$ns" dry "Succeeded UpgradeSucceeded" "dryRun set to false: the real run completes"
json=$(kubectl -n "$ns" get tqu dry -o json)
e2e_eq "real run: observedGeneration is the new generation" "$(jq .metadata.generation <<<"$json")" \
  "$(jq .status.observedGeneration <<<"$json")"
e2e_eq "real run: update.sh ran once" 1 "$(up_update_calls)"
e2e_check_fails "real run: sabre deleted" up_sabre_present
e2e_check_fails "real run: darwin-cdn tuned" up_cdn_untouched
e2e_eq "real run: one backup" 1 "$(find "$UP_DIR/backups" -name 'deploy_*.json' | wc -l)"
delete_tqu "$ns" dry

# ================================================================= paused
ns=tqu-l-paused
up_reset_cluster
up_case_tree "$tmp" paused --scenario update_seconds=8
up_secret "$ns"
up_apply "$ns" p "  paused: true"
up_check_state 30 "$ns" p "Paused Paused" "paused: phase Paused"
e2e_match "paused: the message says before which step and how to go on" \
  "paused before Validate: set spec.paused to false to continue" "$(kubectl -n "$ns" get tqu p -o jsonpath='{.status.message}')"
e2e_eq "paused: Ready, Reconciling and Stalled all False" "False False False" \
  "$(up_cond "$ns" p Ready status) $(up_cond "$ns" p Reconciling status) $(up_cond "$ns" p Stalled status)"
sleep 2
e2e_eq "paused: nothing done (every step Pending, no attempt)" \
  "Validate=0 Preflight=0 BackupDeployments=0 PaasCheck=0 SabreCleanup=0 Upgrade=0 CdnTuning=0 Verify=0" \
  "$(attempts_text "$ns" p)"
e2e_eq "paused: no file written, no vendor tool run" "0 0 0" \
  "$(find "$UP_DIR/backups" -type f 2>/dev/null | wc -l) $(up_paas_calls) $(up_update_calls)"
kubectl -n "$ns" patch tqu p --type merge -p '{"spec":{"paused":false}}' >/dev/null
if e2e_eventually 40 launched "$ns" p; then e2e_ok "resumed: the run goes on, update.sh starts"
else e2e_not_ok "resumed: the run goes on, update.sh starts" "$(up_steps_text "$ns" p)"; fi
# paused while update.sh runs: it is followed to its end, CdnTuning does not start
kubectl -n "$ns" patch tqu p --type merge -p '{"spec":{"paused":true}}' >/dev/null
if e2e_eventually 40 bash -c "[ \"\$(kubectl -n $ns get tqu p -o jsonpath='{.status.message}')\" = 'paused before CdnTuning: set spec.paused to false to continue' ]"; then
  e2e_ok "paused during Upgrade: Paused before CdnTuning once update.sh has finished"
else
  e2e_not_ok "paused during Upgrade: Paused before CdnTuning once update.sh has finished" \
    "$(up_state_of "$ns" p)" "$(up_steps_text "$ns" p)" "$(kubectl -n "$ns" get tqu p -o jsonpath='{.status.message}')"
fi
e2e_eq "paused during Upgrade: update.sh finished (exit 0) and Upgrade Succeeded" "0 Succeeded" \
  "$(cat "$TQU_FAKE_RECORD/update.sh.1.exit" 2>/dev/null) $(step_state "$ns" p Upgrade)"
e2e_eq "paused during Upgrade: status.upgrade.exitCode recorded" 0 \
  "$(kubectl -n "$ns" get tqu p -o jsonpath='{.status.upgrade.exitCode}')"
e2e_eq "paused during Upgrade: the finalizer is gone with update.sh" "" \
  "$(kubectl -n "$ns" get tqu p -o jsonpath='{.metadata.finalizers}')"
sleep 2
e2e_eq "paused during Upgrade: CdnTuning not started" "Pending" "$(step_state "$ns" p CdnTuning)"
e2e_check "paused during Upgrade: darwin-cdn untouched" up_cdn_untouched
kubectl -n "$ns" patch tqu p --type merge -p '{"spec":{"paused":false}}' >/dev/null
up_check_state 60 "$ns" p "Succeeded UpgradeSucceeded" "resumed again: Succeeded"
e2e_eq "paused twice: update.sh ran once" 1 "$(up_update_calls)"
delete_tqu "$ns" p

# ================================================= retry on a new generation
ns=tqu-l-retry
up_reset_cluster
up_case_tree "$tmp" retry --scenario update=fail
up_secret "$ns"
up_apply "$ns" r
up_check_state 60 "$ns" r "Failed UpgradeFailed" "update=fail: Failed UpgradeFailed"
gen1=$(kubectl -n "$ns" get tqu r -o jsonpath='{.metadata.generation}')
kubectl -n "$ns" label tqu r touched=yes >/dev/null
sleep 4
e2e_eq "a metadata-only change is no new generation: still Failed, update.sh not re-run" "Failed UpgradeFailed 1" \
  "$(up_state_of "$ns" r) $(up_update_calls)"
"$FIX/fake-scenario.sh" "$QAXDATA" update=success >/dev/null
kubectl -n "$ns" patch tqu r --type merge -p '{"spec":{"timeouts":{"upgrade":"2h"}}}' >/dev/null
up_check_state 60 "$ns" r "Succeeded UpgradeSucceeded" "new generation (timeouts.upgrade changed): retried, Succeeded"
json=$(kubectl -n "$ns" get tqu r -o json)
e2e_check "the generation moved on" test "$(jq .metadata.generation <<<"$json")" -gt "$gen1"
e2e_eq "retry: the checks ran again before update.sh (attempts 2), the rest not redone, Upgrade twice" \
  "Validate=2 Preflight=2 BackupDeployments=1 PaasCheck=1 SabreCleanup=1 Upgrade=2 CdnTuning=1 Verify=1" \
  "$(attempts_text "$ns" r)"
e2e_eq "retry: status.history has both attempts, newest first" "2:Succeeded:0 1:Failed:1" \
  "$(jq -r '[.status.history[] | "\(.generation):\(.outcome):\(.exitCode // "-")"] | join(" ")' <<<"$json")"
e2e_eq "retry: update.sh ran exactly twice (once per generation), failing then succeeding" "2 1 0" \
  "$(up_update_calls) $(cat "$TQU_FAKE_RECORD/update.sh.1.exit" 2>/dev/null) $(cat "$TQU_FAKE_RECORD/update.sh.2.exit" 2>/dev/null)"
e2e_eq "retry: one backup, not duplicated" "1 1" \
  "$(find "$UP_DIR/backups" -name 'deploy_*.json' | wc -l) $(find "$UP_DIR/backups" -name 'deploy_*.log' | wc -l)"
e2e_eq "retry: the PaaS check ran once" 1 "$(up_paas_calls)"
e2e_eq "retry: status.upgrade.exitCode 0" 0 "$(jq -r .status.upgrade.exitCode <<<"$json")"
delete_tqu "$ns" r

# ================================================================ finalizer
ns=tqu-l-final
up_reset_cluster
up_case_tree "$tmp" final --scenario update_seconds=8
up_secret "$ns"
up_apply "$ns" f
# update.sh launched (the step is Running a moment before that)
if e2e_eventually 40 launched "$ns" f; then e2e_ok "finalizer: update.sh started"
else e2e_not_ok "finalizer: update.sh started" "$(up_steps_text "$ns" f)"; fi
e2e_match "finalizer: upgrade.tianqing.io/vendor-process present while update.sh runs" \
  'upgrade\.tianqing\.io/vendor-process' "$(kubectl -n "$ns" get tqu f -o jsonpath='{.metadata.finalizers}')"
kubectl -n "$ns" delete tqu f --wait=true --timeout=120s >"$tmp/delete.out" 2>&1 &
del_pid=$!
sleep 2
e2e_check "finalizer: kubectl delete is still waiting" kill -0 "$del_pid"
e2e_match "finalizer: the resource is still there, being deleted" '^[0-9]{4}-' \
  "$(kubectl -n "$ns" get tqu f -o jsonpath='{.metadata.deletionTimestamp}')"
e2e_check "finalizer: update.sh still running" test ! -e "$TQU_FAKE_RECORD/update.sh.1.exit"
# while it is being deleted its update.sh still runs: no second upgrade may start
"$FIX/fake-scenario.sh" "$QAXDATA" update_seconds=1 >/dev/null   # for the second one
up_secret tqu-l-final2
up_apply tqu-l-final2 f2 "  initialVersion: 10.5.0.3000"
up_check_state 20 tqu-l-final2 f2 "Blocked AnotherUpgradeActive" \
  "finalizer: a second upgrade meanwhile is Blocked AnotherUpgradeActive"
wait "$del_pid"
del_rc=$? del_done=$(date +%s)
e2e_eq "finalizer: kubectl delete completed" 0 "$del_rc"
exitf=$TQU_FAKE_RECORD/update.sh.1.exit
e2e_eq "finalizer: update.sh had finished, successfully, when the delete completed" 0 "$(cat "$exitf" 2>/dev/null)"
if [ -f "$exitf" ]; then
  lag=$((del_done - $(stat -c %Y "$exitf")))
  e2e_check "finalizer: ... the delete completed after update.sh ended (${lag} s after)" test "$lag" -ge 0
fi
e2e_check_fails "finalizer: the resource is gone" kubectl -n "$ns" get tqu f
e2e_match "finalizer: a WaitingForVendorProcess Event" WaitingForVendorProcess "$(kubectl -n "$ns" get events)"
up_check_state 60 tqu-l-final2 f2 "Succeeded UpgradeSucceeded" "finalizer: the first gone, the second runs to Succeeded"
e2e_eq "finalizer: update.sh ran twice in all, one after the other" "2 0 0" \
  "$(up_update_calls) $(cat "$TQU_FAKE_RECORD/update.sh.1.exit" 2>/dev/null) $(cat "$TQU_FAKE_RECORD/update.sh.2.exit" 2>/dev/null)"
e2e_check "finalizer: the second update.sh started after the first had ended" \
  test "$(stat -c %Y "$TQU_FAKE_RECORD/update.sh.2.argv")" -ge "$(stat -c %Y "$TQU_FAKE_RECORD/update.sh.1.exit")"
delete_tqu tqu-l-final2 f2

# ================================================================== verify
ns=tqu-l-verify
up_reset_cluster
up_case_tree "$tmp" verify
up_secret "$ns"
"$FIX/set-rollout.sh" default edge2 --ready 0 >/dev/null
up_apply "$ns" v "  initialVersion: 10.5.0.3000
  timeouts: {verify: 5s}"
up_check_state 90 "$ns" v "Failed VerifyTimedOut" "Verify: a Deployment never available: Failed VerifyTimedOut"
e2e_match "Verify: the message names it" \
  "1 of [0-9]+ Deployments not available after 5 s \(spec\.timeouts\.verify\): default/edge2 \(0/3 available\)" \
  "$(up_cond "$ns" v Stalled message)"
e2e_eq "Verify: Stalled=True" True "$(up_cond "$ns" v Stalled status)"
e2e_eq "Verify: every step before it done, Verify Failed" \
  "Validate=Succeeded Preflight=Succeeded BackupDeployments=Succeeded PaasCheck=Succeeded SabreCleanup=Skipped Upgrade=Succeeded CdnTuning=Succeeded Verify=Failed" \
  "$(up_steps_text "$ns" v)"
delete_tqu "$ns" v
"$FIX/set-rollout.sh" default edge2 >/dev/null

e2e_check_fails "no sanitizer report in the controller log" grep -E 'AddressSanitizer|runtime error:' "$tmp/ctl.log"
up_stop ctl
echo "# run time: $(( $(date +%s) - T0 )) s"
e2e_summary
exit $?
