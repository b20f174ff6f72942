#!/usr/bin/env bash
# The engine's safety rules (design.md section 8), each a defect of the
# code before them:
#   - the one-upgrade slot: a resource Blocked in Preflight does not hold
#     it; each resource shows its own problem; a third resource runs its
#     checks beside a running upgrade and is Blocked AnotherUpgradeActive
#     only before the first step that changes anything;
#   - dryRun: true switched on while update.sh runs is not acted on: the
#     run goes on as a real one (UpgradeSucceeded, a DryRunIgnored Event),
#     keeps the slot (a second resource does not start its update.sh
#     beside it), and update.sh ran once;
#   - a retry after a failure runs the checks again before any vendor
#     command: a spec made wrong after the failure stops in the checks and
#     update.sh is not run again;
#   - the launch is recorded in status.launch before update.sh starts: with
#     the state folder removed and the spec changed, it is not started again
#     (UpgradeOutcomeUnknown);
#   - past timeouts.upgrade update.sh is reported slow (UpgradeSlow), never
#     killed; a timeout raised while it runs counts at once; the SSH Secret is read when the command starts, not on every
#     poll; spec.stop: true stops it (UpgradeStopped); stop: false runs it
#     again;
#   - two controllers without --leader-elect: only one acts (the claim
#     Lease); the other takes over at once when the first is killed -9.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
FIX=$TQU_REPO/tests/fixtures

trap 'up_cleanup_cases "$tmp"' EXIT

step_state() { kubectl -n "$1" get tqu "$2" -o json | jq -r --arg s "$3" '.status.steps[] | select(.name==$s) | .state'; }
launched() { [ "$(step_state "$1" "$2" Upgrade)" = Running ]; }
# update.sh's pid recorded in status (after status.launch, which comes first)
has_pid() { [ -n "$(kubectl -n "$1" get tqu "$2" -o jsonpath='{.status.upgrade.pid}')" ]; }
# update.sh of case $1 (its pid from the supervisor's file) no longer runs
vendor_gone() {
  local p
  p=$(jq -r .childPid "$tmp"/c/"$1"/backups/*/upgrade-g*/pid 2>/dev/null | head -n1)
  [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null
}
delete_tqu() { kubectl -n "$1" delete tqu "$2" --ignore-not-found --wait=true --timeout=90s >/dev/null; }
# calls of update.sh in the fake tree of case $1
calls_of() { cat "$tmp/c/$1/qax/fake/records/update.sh.calls" 2>/dev/null || echo 0; }

UP_DIR=$tmp
kubectl apply -f "$FIX/cluster-objects.yaml" >/dev/null
"$FIX/set-rollout.sh" --all >/dev/null
up_kubelet_start
up_controller ctl || { e2e_not_ok "controller started" "$(tail -n 20 "$tmp/ctl.log")"; e2e_summary; exit 1; }

# ============================================ the slot: each its own problem
ns=tqu-s-slot
up_secret "$ns"
up_case_tree "$tmp" blocked
up_apply "$ns" blocked "  confirmations: {endpointHotfixApplied: true, clientAutoUpdateDisabled: true, xinghaiReady: false}"
up_check_state 30 "$ns" blocked "Blocked ConfirmationMissing" "a resource Blocked in Preflight shows its own reason"
up_case_tree "$tmp" runner --scenario update_seconds=8
up_apply "$ns" runner
if e2e_eventually 40 launched "$ns" runner; then
  e2e_ok "a second resource is not held by the one Blocked in Preflight: its update.sh runs"
else
  e2e_not_ok "a second resource is not held by the one Blocked in Preflight: its update.sh runs" \
    "$(up_state_of "$ns" runner)" "$(up_steps_text "$ns" runner)"
fi
e2e_eq "... and the Blocked one still shows its own reason" "Blocked ConfirmationMissing" "$(up_state_of "$ns" blocked)"
up_case_tree "$tmp" third
up_apply "$ns" third
up_check_state 30 "$ns" third "Blocked AnotherUpgradeActive" "a third resource waits for the slot"
e2e_eq "... after its checks ran (Validate, Preflight, the backup of our own folder), before the PaaS check" \
  "Validate=Succeeded Preflight=Succeeded BackupDeployments=Succeeded PaasCheck=Pending" \
  "$(up_steps_text "$ns" third | cut -d' ' -f1-4)"
e2e_eq "... and its PaaS check did not run" 0 \
  "$(grep -l -- '--actions=paas_check' "$tmp"/c/third/qax/fake/records/darwin-client.*.argv 2>/dev/null | wc -l)"
up_check_state 60 "$ns" runner "Succeeded UpgradeSucceeded" "the running one completes"
up_check_state 60 "$ns" third "Succeeded UpgradeSucceeded" "then the third takes the slot and completes"
e2e_eq "update.sh ran once each, never for the Blocked one" "1 1 0" \
  "$(calls_of runner) $(calls_of third) $(calls_of blocked)"
delete_tqu "$ns" blocked; delete_tqu "$ns" runner; delete_tqu "$ns" third
up_reset_cluster

# ====================================== dryRun switched on under update.sh
ns=tqu-s-dry
up_secret "$ns"
up_case_tree "$tmp" dry --scenario update_seconds=8
up_apply "$ns" d
if e2e_eventually 40 launched "$ns" d; then e2e_ok "update.sh runs"
else e2e_not_ok "update.sh runs" "$(up_steps_text "$ns" d)"; fi
kubectl -n "$ns" patch tqu d --type merge -p '{"spec":{"dryRun":true}}' >/dev/null
up_case_tree "$tmp" dry2
up_apply "$ns" d2
sleep 3
e2e_eq "dryRun under a running update.sh: the slot stays taken (the other waits)" "Blocked AnotherUpgradeActive" \
  "$(up_state_of "$ns" d2)"
e2e_eq "... and the other's update.sh did not start" 0 "$(calls_of dry2)"
delete_tqu "$ns" d2
up_check_state 60 "$ns" d "Succeeded UpgradeSucceeded" "the run that changed something ends as a real one, not DryRunComplete"
e2e_match "... with a DryRunIgnored Warning" DryRunIgnored "$(kubectl -n "$ns" get events --field-selector involvedObject.name=d)"
e2e_eq "... update.sh ran once" 1 "$(calls_of dry)"
e2e_check "... the darwin-cdn tuning was applied (the run went on)" up_cdn_tuned
delete_tqu "$ns" d
up_reset_cluster

# =============================== a retry after a failure checks again first
ns=tqu-s-retry
up_secret "$ns"
up_case_tree "$tmp" retry --scenario update=fail
up_apply "$ns" r
up_check_state 60 "$ns" r "Failed UpgradeFailed" "update=fail: Failed UpgradeFailed"
"$FIX/fake-scenario.sh" "$QAXDATA" update=success >/dev/null
# a person edits the spec to retry, and gets a confirmation wrong
kubectl -n "$ns" patch tqu r --type merge -p '{"spec":{"confirmations":{"xinghaiReady":false}}}' >/dev/null
up_check_state 30 "$ns" r "Blocked ConfirmationMissing" "the retry stops in Preflight, run again"
e2e_eq "... update.sh was not run again" 1 "$(calls_of retry)"
e2e_eq "... history: the failed attempt, then the blocked one still open" "Running Failed" \
  "$(kubectl -n "$ns" get tqu r -o json | jq -r '[.status.history[].outcome] | join(" ")')"
delete_tqu "$ns" r
up_reset_cluster

# ========== the launch recorded in status: a lost folder starts nothing twice
ns=tqu-s-lost
up_secret "$ns"
up_case_tree "$tmp" lost --scenario update_seconds=30
up_apply "$ns" l
if e2e_eventually 40 has_pid "$ns" l; then e2e_ok "update.sh runs"
else e2e_not_ok "update.sh runs" "$(up_steps_text "$ns" l)"; fi
e2e_eq "status.launch records it before the outcome is known" "1 Unknown" \
  "$(kubectl -n "$ns" get tqu l -o json | jq -r '"\(.status.launch.generation) \(.status.launch.outcome)"')"
rm -rf "$UP_DIR/backups"
kubectl -n "$ns" patch tqu l --type merge -p '{"spec":{"timeouts":{"verify":"21m"}}}' >/dev/null
up_check_state 30 "$ns" l "Failed UpgradeOutcomeUnknown" "state folder removed and the spec changed: UpgradeOutcomeUnknown"
sleep 8
e2e_eq "... update.sh was not started a second time" 1 "$(calls_of lost)"
e2e_match "... the message names status.launch" "status.launch" "$(kubectl -n "$ns" get tqu l -o jsonpath='{.status.message}')"
kubectl -n "$ns" patch tqu l --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null
delete_tqu "$ns" l
up_reset_cluster

# ================ slow is not failed; spec.stop stops it (UpgradeStopped)
ns=tqu-s-slow
up_secret "$ns"
up_case_tree "$tmp" slow --scenario update_seconds=35
up_apply "$ns" s "  timeouts: {upgrade: 2s}"
up_check_state 40 "$ns" s "Running UpgradeSlow" "past timeouts.upgrade: Running UpgradeSlow, not killed"
e2e_eq "... Stalled stays False, Reconciling True" "False True" \
  "$(up_cond "$ns" s Stalled status) $(up_cond "$ns" s Reconciling status)"
e2e_match "... a Warning Event UpgradeSlow" UpgradeSlow "$(kubectl -n "$ns" get events --field-selector involvedObject.name=s)"
kubectl -n "$ns" patch tqu s --type merge -p '{"spec":{"timeouts":{"upgrade":"1h"}}}' >/dev/null
up_check_state 20 "$ns" s "Running UpgradeRunning" \
  "timeouts.upgrade raised while it runs: no longer slow (the new limit counts at once)"
up_check_state 60 "$ns" s "Succeeded UpgradeSucceeded" "... and it runs to its end: Succeeded"
e2e_eq "... update.sh ran once, to its end (exit 0)" "1 0" \
  "$(calls_of slow) $(cat "$tmp/c/slow/qax/fake/records/update.sh.1.exit" 2>/dev/null)"
# the Secret is read when a command needs it (Preflight's check, the
# launch), never on the polls of a running update.sh (the controller's
# debug log: the audit log records no reads)
e2e_eq "... the SSH Secret was read twice (Preflight, the launch), not on every poll" 2 \
  "$(grep '"msg":"reading the SSH Secret"' "$tmp/ctl.log" | grep -c "\"key\":\"$ns/s\"")"
delete_tqu "$ns" s
up_reset_cluster

ns=tqu-s-stop
up_secret "$ns"
up_case_tree "$tmp" stop --scenario update_seconds=60
up_apply "$ns" x
if e2e_eventually 40 has_pid "$ns" x; then e2e_ok "update.sh runs"
else e2e_not_ok "update.sh runs" "$(up_steps_text "$ns" x)"; fi
kubectl -n "$ns" patch tqu x --type merge -p '{"spec":{"stop":true}}' >/dev/null
up_check_state 40 "$ns" x "Failed UpgradeStopped" "spec.stop: true: Failed UpgradeStopped"
e2e_check "... update.sh is no longer running (its recorded pid)" vendor_gone stop
e2e_eq "... status.launch says Failed" Failed "$(kubectl -n "$ns" get tqu x -o jsonpath='{.status.launch.outcome}')"
"$FIX/fake-scenario.sh" "$QAXDATA" update_seconds=1 >/dev/null
kubectl -n "$ns" patch tqu x --type merge -p '{"spec":{"stop":false}}' >/dev/null
up_check_state 60 "$ns" x "Succeeded UpgradeSucceeded" "spec.stop: false: run again, Succeeded"
e2e_eq "... update.sh ran twice (stopped, then to its end)" 2 "$(calls_of stop)"
delete_tqu "$ns" x
up_reset_cluster

# ======================= two controllers without --leader-elect: one actor
up_stop ctl
UP_DIR=$tmp
ns=tqu-s-two
up_secret "$ns"
up_controller a
up_controller b
e2e_eventually 15 grep -q '"msg":"claimed the workflow' "$tmp/a.log"
sleep 2
e2e_eq "the second controller waits: it has not claimed the workflow" 0 \
  "$(grep -c '"msg":"claimed the workflow' "$tmp/b.log")"
up_case_tree "$tmp" two
up_apply "$ns" t
up_check_state 60 "$ns" t "Succeeded UpgradeSucceeded" "one upgrade with two controllers running"
e2e_eq "... only the first acted (the second ran no step)" "0" "$(grep -c '"msg":"step started"' "$tmp/b.log")"
e2e_eq "... update.sh ran once" 1 "$(calls_of two)"
up_stop a KILL
start=$(date +%s)
if e2e_eventually 15 grep -q '"msg":"claimed the workflow' "$tmp/b.log"; then
  e2e_ok "after kill -9 of the first, the second claims the workflow at once ($(( $(date +%s) - start )) s: the holder's process is gone)"
else
  e2e_not_ok "after kill -9 of the first, the second claims the workflow" "$(tail -n 5 "$tmp/b.log")"
fi
up_case_tree "$tmp" two2
up_apply "$ns" t2
up_check_state 60 "$ns" t2 "Succeeded UpgradeSucceeded" "... and acts"
delete_tqu "$ns" t; delete_tqu "$ns" t2

e2e_summary
