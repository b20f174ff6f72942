#!/usr/bin/env bash
# kubectl-tianqing (plugin/, README "kubectl tianqing") against a real API
# server: found by kubectl as a plugin; `status` read back in several
# phases from statuses written with `kubectl patch --subresource=status`
# (as test_crd.sh does); plan and history tables; approve/pause/stop/retry
# patches read back with kubectl; wait's exit codes (0 Ready, 1 Stalled,
# 2 timeout / not found) within its timeout; status --watch redrawing on a
# change and ending 0 on SIGINT. Then live, with the real controller on a
# fake /qaxdata tree (upgrade_lib.sh), the screen of real TianqingUpgrades
# in every phase: not yet observed (Pending), Running with update.sh's
# last lines, another one held by the one-upgrade slot, Succeeded (wait 0),
# Failed (wait 1, reason and remedy), Waiting for its window, a Paused dry
# run released by approve, Blocked without its Secret.
#
#   tests/cluster/with-cluster.sh tests/e2e/test_plugin.sh
# The JSON in single quotes is data for the API server:
# shellcheck disable=SC2016
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
e2e_require_cluster

bin=${TQU_PLUGIN_BIN:-$(dirname "${TQU_BIN:-$root/build/tianqing-upgrade-controller}")/kubectl-tianqing}
if [ ! -x "$bin" ]; then echo "no $bin: run make first" >&2; exit 2; fi
ns=tq-plugin
crd=tianqingupgrades.upgrade.tianqing.io
tmp=$(mktemp -d)
bgpid=
cleanup() {
  [ -n "$bgpid" ] && kill "$bgpid" 2>/dev/null
  declare -F up_cleanup >/dev/null && up_cleanup
  rm -rf "$tmp"
}
trap cleanup EXIT

kt() { "$bin" -n "$ns" "$@"; }
k() { kubectl -n "$ns" "$@"; }
# run CMD...: rc, $out (stdout and stderr)
run() { out=$("$@" 2>&1); rc=$?; }
# status_patch NAME JSON: a merge patch of .status
status_patch() { k patch tqu "$1" --subresource=status --type=merge -p "$2" >/dev/null; }
make_tqu() {   # make_tqu NAME[:paused]...: one kubectl create for them all
  local n
  for n in "$@"; do
    cat <<YAML
---
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingUpgrade
metadata: {name: ${n%%:*}, namespace: $ns}
spec:
  fromVersion: 10.6.0.2600
  initialVersion: 10.6.0.2000
  toVersion: 10.7.0.2800
  machines: 6
  paused: $([ "${n#*:}" = paused ] && echo true || echo false)
  ssh: {passwordSecretRef: {name: tianqing-ssh, key: password}}
YAML
  done | k create -f - >/dev/null
}
now_minus() { date -u -d "@$(( $(date +%s) - $1 ))" +%Y-%m-%dT%H:%M:%SZ; }
cond() {   # cond TYPE STATUS REASON MESSAGE GEN
  printf '{"type":"%s","status":"%s","reason":"%s","message":"%s","lastTransitionTime":"2026-12-05T22:00:00Z","observedGeneration":%s}' "$@"
}
steps_at() {   # steps_at N STATE: steps 1..N-1 Succeeded, N in STATE, the rest Pending
  local names=(Validate Preflight BackupDeployments PaasCheck SabreCleanup Upgrade CdnTuning Verify) i s=""
  for i in "${!names[@]}"; do
    if [ $((i + 1)) -lt "$1" ]; then s+='{"name":"'${names[$i]}'","state":"Succeeded","attempts":1,"startedAt":"2026-12-05T22:00:00Z","completedAt":"2026-12-05T22:01:00Z"},'
    elif [ $((i + 1)) -eq "$1" ]; then s+='{"name":"'${names[$i]}'","state":"'$2'","attempts":1,"startedAt":"'"$(now_minus 600)"'"},'
    else s+='{"name":"'${names[$i]}'","state":"Pending"},'; fi
  done
  printf '[%s]' "${s%,}"
}

e2e_check "the CRD applies and is Established" sh -c \
  "kubectl apply -f '$root/crds/' >/dev/null && kubectl wait --for=condition=Established crd/$crd --timeout=30s"
kubectl create namespace "$ns" >/dev/null
make_tqu fresh running blocked finished gated:paused later

# ------------------------------------------------------------ as a plugin
mkdir "$tmp/bin"; ln -s "$bin" "$tmp/bin/kubectl-tianqing"
run env PATH="$tmp/bin:$PATH" kubectl tianqing --help
e2e_match "kubectl finds the plugin on PATH: kubectl tianqing --help" "^Usage: kubectl tianqing COMMAND" "$out"
run "$bin"
e2e_eq "no command: exit 2" "2" "$rc"
run "$bin" frobnicate
e2e_match "an unknown command: exit 2, named" "unknown command \"frobnicate\"" "$out $rc"

# ------------------------------------------------------------ status
run env PATH="$tmp/bin:$PATH" kubectl tianqing status fresh -n "$ns"
e2e_eq "status of a resource the controller has not seen (through kubectl, -n after the NAME)" \
"= TianqingUpgrade $ns/fresh =
Assessment:  Unknown: the controller has not reported on it yet
Target:      10.6.0.2600 -> 10.7.0.2800
Step:        not started
Generation:  1 (not yet observed by the controller)" "$out"

status_patch running '{"status":{"observedGeneration":1,"phase":"Running","currentStep":"Upgrade","message":"Upgrade: update.sh is running","startedAt":"'"$(now_minus 1800)"'",
  "conditions":['"$(cond Ready False StepRunning x 1),$(cond Reconciling True StepRunning x 1),$(cond Stalled False StepRunning x 1)"'],
  "steps":'"$(steps_at 6 Running)"',
  "upgrade":{"pid":4242,"startedAt":"'"$(now_minus 600)"'","outputTail":"[1/3] stop services\n[2/3] load images\n"}}}'
run kt status running
e2e_match "Running at Upgrade: Progressing" "^Assessment:  Progressing$" "$out"
e2e_match "step 6 of 8: Upgrade (Running)" "^Step:        step 6 of 8: Upgrade \(Running\)$" "$out"
e2e_match "duration from status.startedAt (30m)" "^Duration:    30m([0-9]s)? \(since 20" "$out"
e2e_match "time left from the vendor's 60 minutes, 10 minutes in" \
  "^Est. left:   (50m|49m[0-9]+s) \(estimate 1h from the vendor's figure; running 10m" "$out"
e2e_match "the observed generation is current" "^Generation:  1 \(observed: this status is current\)$" "$out"
e2e_match_lines "the last output lines" "Last output of update.sh \(running, pid 4242\):
  \| \[1/3\] stop services
  \| \[2/3\] load images" "$(grep -A2 '^Last output' <<<"$out")"

status_patch blocked '{"status":{"observedGeneration":1,"phase":"Blocked","currentStep":"Preflight","message":"Preflight: spec.confirmations.xinghaiReady is false",
  "conditions":['"$(cond Ready False ConfirmationMissing "Preflight: spec.confirmations.xinghaiReady is false" 1),$(cond Stalled True ConfirmationMissing "Preflight: spec.confirmations.xinghaiReady is false" 1)"'],
  "steps":'"$(steps_at 2 Blocked)"'}}'
run kt status blocked
e2e_match "Blocked: a person must act" "^Assessment:  Blocked: a person must act$" "$out"
e2e_eq "the reason, its message and README's remedy" \
"Reasons (a person must act):
  ConfirmationMissing: Preflight: spec.confirmations.xinghaiReady is false
    Remedy: the message lists which spec.confirmations are still false and what each means: check, then set true" \
  "$(sed -n '/^Reasons/,$p' <<<"$out")"

status_patch finished '{"status":{"observedGeneration":1,"phase":"Succeeded","message":"upgraded","startedAt":"2026-12-05T22:00:00Z","completedAt":"2026-12-06T00:03:00Z",
  "conditions":['"$(cond Ready True UpgradeSucceeded upgraded 1),$(cond Stalled False UpgradeSucceeded upgraded 1)"'],"steps":'"$(steps_at 9 x)"'}}'
run kt status finished
e2e_match_lines "Succeeded: Completed, all steps, duration start to end" \
  "Assessment:  Completed
Target:      10.6.0.2600 -> 10.7.0.2800
Step:        all 8 steps done \(8 succeeded, 0 skipped\)
Duration:    2h3m \(2026-12-05T22:00:00Z to 2026-12-06T00:03:00Z\)" "$(sed -n 2,5p <<<"$out")"

k patch tqu finished --type=merge -p '{"spec":{"machines":9}}' >/dev/null
run kt status finished
e2e_match "a spec change not yet observed is said so" \
  "^Generation:  2 \(the controller has observed 1: this status predates the latest change\)$" "$out"

run kt status
e2e_eq "status without NAME: one screen per resource of the namespace" \
  "= TianqingUpgrade $ns/blocked = = TianqingUpgrade $ns/finished = = TianqingUpgrade $ns/fresh = = TianqingUpgrade $ns/gated = = TianqingUpgrade $ns/later = = TianqingUpgrade $ns/running =" \
  "$(grep '^= ' <<<"$out" | paste -sd' ')"
run "$bin" status -A
e2e_match "status -A: every namespace" "= TianqingUpgrade $ns/running =" "$out"
kubectl create namespace tq-plugin-empty >/dev/null
run "$bin" status -n tq-plugin-empty
e2e_eq "status in an empty namespace: kubectl's sentence, exit 0" "No resources found in tq-plugin-empty namespace. 0" "$out $rc"
run kt status nosuch
e2e_match "status of a missing resource: NotFound, exit 2" "NotFound.*nosuch.* 2$" "$out $rc"
run kt status tqu/running
e2e_match "KIND/NAME with the short name" "^= TianqingUpgrade $ns/running =" "$out"

# ------------------------------------------------------------ plan, history
run kt plan fresh
e2e_eq "plan before one is published" "no plan published yet (the controller publishes status.plan after Preflight)" "$out"
status_patch running '{"status":{"plan":[{"step":"SabreCleanup","action":"Delete","target":"apps/v1/deployments/default-sabre-server/sabre-server"},{"step":"Upgrade","action":"Command","target":"sh","detail":"sh update.sh -P ******"}]}}'
run kt plan running
e2e_eq "plan: status.plan as a table" \
"STEP          ACTION   TARGET                                                 DETAIL
SabreCleanup  Delete   apps/v1/deployments/default-sabre-server/sabre-server  -
Upgrade       Command  sh                                                     sh update.sh -P ******" "$out"
run kt history running
e2e_eq "history without attempts" "no attempts recorded 0" "$out $rc"

# ------------------------------------------------------------ approve, pause
run kt approve gated
e2e_match "approve says what it did" "^tianqingupgrade.upgrade.tianqing.io/gated approved" "$out"
e2e_eq "approve: spec.paused false read back" "false" "$(k get tqu gated -o jsonpath='{.spec.paused}')"
run kt pause gated
e2e_eq "pause: spec.paused true read back, exit 0" "true 0" "$(k get tqu gated -o jsonpath='{.spec.paused}') $rc"

# ------------------------------------------------------------ stop
has_stop=$(kubectl get crd "$crd" -o json | jq '.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties | has("stop")')
if [ "$has_stop" = false ]; then
  run kt stop running
  e2e_match "stop with a CRD that has no spec.stop: exit 2, nothing done, said so" \
    "did not keep spec.stop.*nothing was changed 2$" "$out $rc"
  # what the controller's CRD is to get (design.md sections 1 and 8)
  kubectl patch crd "$crd" --type=json -p '[
   {"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/stop",
    "value":{"type":"boolean","description":"true: stop a running update.sh"}},
   {"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/status/properties/history",
    "value":{"type":"array","description":"attempts","items":{"type":"object","description":"one attempt","properties":{
      "generation":{"type":"integer","description":"g"},"started":{"type":"string","description":"s"},
      "completed":{"type":"string","description":"c"},"outcome":{"type":"string","description":"o"},
      "reason":{"type":"string","description":"r"},"exitCode":{"type":"integer","description":"e"}}}}}]' >/dev/null
fi
e2e_eventually 15 "$bin" -n "$ns" stop running
run kt stop running
e2e_match "stop: prints what it did, exit 0" "^tianqingupgrade.upgrade.tianqing.io/running stop requested.*UpgradeStopped.* 0$" "$out $rc"
e2e_eq "stop: spec.stop true read back" "true" "$(k get tqu running -o jsonpath='{.spec.stop}')"

status_patch running '{"status":{"history":[{"generation":2,"started":"2026-12-06T10:00:00Z","completed":"2026-12-06T10:52:00Z","outcome":"Failed","reason":"UpgradeFailed","exitCode":1},{"generation":1,"started":"2026-12-05T22:00:00Z","completed":"2026-12-05T22:00:30Z","outcome":"Superseded","reason":"NewGeneration"}]}}'
run kt history running
e2e_eq "history: status.history as a table, newest first" \
"GENERATION  STARTED               COMPLETED             DURATION  OUTCOME     REASON         EXIT
2           2026-12-06T10:00:00Z  2026-12-06T10:52:00Z  52m       Failed      UpgradeFailed  1
1           2026-12-05T22:00:00Z  2026-12-05T22:00:30Z  30s       Superseded  NewGeneration  -" "$out"
run kt status running
e2e_match "time left from the last attempt in history (52m)" \
  "^Est. left:   (42m|41m[0-9]+s) \(estimate 52m from the last attempt, generation 2; running 10m" "$out"

# ------------------------------------------------------------ retry
run kt retry running
e2e_eq "retry: spec.retry is 1" "1" "$(k get tqu running -o jsonpath='{.spec.retry}')"
gen_before=$(k get tqu running -o jsonpath='{.metadata.generation}')
run kt retry running
e2e_eq "retry again: 2, and a new generation (the controller acts on generations)" "2 $((gen_before + 1))" \
  "$(k get tqu running -o jsonpath='{.spec.retry} {.metadata.generation}')"
e2e_match "retry says what it did" "retry requested \(spec.retry: 2, a new generation\)" "$out"

# ------------------------------------------------------------ wait
e2e_eq "wait: Ready for an older generation is not Ready: exit 2 at the timeout" "2" "$(kt wait finished --timeout=2s >/dev/null 2>&1; echo $?)"
status_patch finished '{"status":{"observedGeneration":2,"conditions":['"$(cond Ready True UpgradeSucceeded upgraded 2),$(cond Stalled False UpgradeSucceeded upgraded 2)"']}}'
run kt wait finished --timeout=20s
e2e_eq "wait: Ready=True for the current generation: exit 0 at once" "finished: Ready 0" "$out $rc"
run kt wait blocked --timeout=20s
e2e_match "wait: Stalled=True: exit 1 with the reason" "^blocked: Stalled: ConfirmationMissing: .* 1$" "$out $rc"

status_patch later '{"status":{"observedGeneration":1,"phase":"Running","currentStep":"Preflight","conditions":['"$(cond Ready False StepRunning x 1),$(cond Stalled False StepRunning x 1)"']}}'
t0=$(date +%s)
"$bin" -n "$ns" wait later --timeout=30s > "$tmp/wait.out" 2>&1 &
bgpid=$!
sleep 1
status_patch later '{"status":{"phase":"Blocked","conditions":['"$(cond Ready False PackageMissing "no package" 1),$(cond Stalled True PackageMissing "no package" 1)"']}}'
wait "$bgpid"; rc=$?; bgpid=
t1=$(date +%s)
e2e_eq "wait: a status change to Stalled ends a running wait with 1 (watch-driven)" "1" "$rc"
e2e_check "... within 5 s of it, not at the timeout ($((t1 - t0)) s)" test $((t1 - t0)) -le 6
t0=$(date +%s)
run kt wait fresh --timeout=2s
t1=$(date +%s)
e2e_match "wait: timeout: exit 2, said so" "timed out 2$" "$out $rc"
e2e_check "... after about 2 s ($((t1 - t0)) s)" test $((t1 - t0)) -ge 2 -a $((t1 - t0)) -le 5
run kt wait nosuch --timeout=5s
e2e_match "wait: not found: exit 2" "not found.* 2$" "$out $rc"
run kt wait fresh --timeout=soon
e2e_match "wait: a malformed --timeout is a usage error (exit 2)" "^error: --timeout=soon: want a duration.*;2$" "$(head -n1 <<<"$out");$rc"

# ------------------------------------------------------------ status --watch
"$bin" -n "$ns" status later --watch > "$tmp/watch.out" 2>&1 &
bgpid=$!
e2e_eventually 10 grep -q '^Assessment:  Blocked' "$tmp/watch.out"
status_patch later '{"status":{"phase":"Paused","message":"held for approval","conditions":['"$(cond Ready False Paused held 1),$(cond Stalled False Paused held 1)"']}}'
if e2e_eventually 10 grep -q '^Message:     held for approval' "$tmp/watch.out"; then
  e2e_ok "status --watch redraws on a change"
else
  e2e_not_ok "status --watch redraws on a change" "$(cat "$tmp/watch.out")"
fi
e2e_match "... the new screen says Paused" "Assessment:  Paused" "$(cat "$tmp/watch.out")"
kill -INT "$bgpid"; wait "$bgpid"; rc=$?; bgpid=
e2e_eq "status --watch ends with 0 on Ctrl-C" "0" "$rc"

# ------------------------------------------------------------ live, with the controller
# Real TianqingUpgrades run by the real controller on a fake /qaxdata tree,
# the screen read in every phase: "first" is applied before the controller
# starts (not yet observed), then runs for real, its update.sh taking about
# 25 s (Running: step, times, update.sh's last lines), and ends Succeeded
# (wait: 0); "second", applied meanwhile, is held by the one-upgrade slot
# (AnotherUpgradeActive), then runs with an update.sh that fails (Failed:
# wait 1, the reason and its remedy); "later" waits for its maintenance
# window (Waiting). Beside them a dry run gated by paused: true, released by
# `approve`, waited for; and one Blocked for want of its Secret.
# shellcheck source-path=SCRIPTDIR source=upgrade_lib.sh
. "$here/upgrade_lib.sh"
: "${TQU_BIN:=$root/build/tianqing-upgrade-controller}" "${TQU_REPO:=$root}"
k delete tqu --all --wait=false >/dev/null          # nothing here for the controller to act on
live=tq-plugin-live
lkt() { "$bin" -n "$live" "$@"; }
ljson() { kubectl -n "$live" get tqu "$1" -o json; }
# the screen's "Last output" lines, without their "  | "
screen_tail() { sed -n '/^Last output of update.sh/,/^$/{/^  | /s/^  | //p}' <<<"$1"; }
# lines, each a line of FILE, in FILE's order
lines_in_file() { diff <(printf '%s\n' "$1") <(grep -xF -f <(printf '%s\n' "$1") "$2"); }
running_with_output() {   # NAME: update.sh running, its first lines in status
  ljson "$1" | jq -e '.status.phase == "Running" and .status.currentStep == "Upgrade"
    and ((.status.upgrade.outputTail // "") | test("\\[[0-9]+/10\\]"))' >/dev/null
}
if up_world "$tmp/live" --scenario update_seconds=25 && up_secret "$live"; then
  # ---- Pending: applied before the controller runs
  up_apply "$live" first
  run lkt status first
  e2e_eq "live, Pending: a resource the controller has not seen yet" \
"= TianqingUpgrade $live/first =
Assessment:  Unknown: the controller has not reported on it yet
Target:      10.6.0.2600 -> 10.7.0.2800
Step:        not started
Generation:  1 (not yet observed by the controller)" "$out"
  up_kubelet_start
  up_controller ctl || e2e_not_ok "live: the controller starts" "$(tail -n 20 "$tmp/live/ctl.log")"
  up_apply "$live" gate "  dryRun: true
  paused: true"
  kubectl create namespace tq-plugin-nosecret >/dev/null
  up_apply tq-plugin-nosecret nosecret "  dryRun: true"

  # ---- Running: update.sh runs (its scenario read: the next run fails)
  e2e_eventually 60 grep -q 'upgrade started' "$INSTALL_LOG"
  "$TQU_REPO/tests/fixtures/fake-scenario.sh" "$tmp/live/qax" update=fail update_seconds=2
  up_apply "$live" second
  if e2e_eventually 60 running_with_output first; then
    run lkt status first
    json=$(ljson first)
  else
    out="" json=$(ljson first)
    e2e_not_ok "live, Running: update.sh's output reaches status" "$(up_steps_text "$live" first)" "$json"
  fi
  e2e_match "live, Running: Progressing" "^Assessment:  Progressing$" "$out"
  e2e_match "live, Running: step 6 of 8: Upgrade (Running)" "^Step:        step 6 of 8: Upgrade \(Running\)$" "$out"
  e2e_match "live, Running: the duration since status.startedAt" \
    "^Duration:    [0-9][0-9ms]* \(since $(jq -r .status.startedAt <<<"$json")\)$" "$out"
  e2e_match "live, Running: the time left from the vendor's hour, and the time update.sh has run" \
    "^Est\. left:   5[0-9]m([0-9]+s)? \(estimate 1h from the vendor's figure; running [0-9][0-9ms]*\)$" "$out"
  e2e_match "live, Running: the status is current" "^Generation:  1 \(observed: this status is current\)$" "$out"
  pid=$(jq -r .status.upgrade.pid <<<"$json")
  e2e_match "live, Running: the message has update.sh's pid and last line" \
    "^Message:     Upgrade: update\.sh running for [0-9]+ s \(pid $pid\); last output: .* \[INFO\] \[[0-9]+/10\] " "$out"
  e2e_match_lines "live, Running: steps 1-5 done, Upgrade running, the rest pending" \
    "^  5\.  SabreCleanup +Succeeded +[0-9ms]+
  6\.  Upgrade +Running +[0-9][0-9ms]*
  7\.  CdnTuning +Pending
  8\.  Verify +Pending$" "$(grep -E '^  [5-8]\.  ' <<<"$out")"
  e2e_match "live, Running: the last output of update.sh, with its pid" \
    "^Last output of update\.sh \(running, pid $pid\):$" "$out"
  e2e_match "... from its first line" \
    "^[0-9-]+ [0-9:]+ \[INFO\] 升级开始 upgrade started: 10\.6\.0\.2600 -> 10\.7\.0\.2800, template darwin_update_template_20250301120000\.yaml, ssh root@\*:22, data backup " \
    "$(screen_tail "$out" | head -n1)"
  e2e_check "... every line as update.sh wrote it, in order" lines_in_file "$(screen_tail "$out")" \
    "$(jq -r .status.upgrade.logFile <<<"$json")"
  e2e_check_fails "... the password nowhere on the screen" grep -qF -- "$UP_PASSWORD" <<<"$out"
  run lkt wait first --timeout=1s
  e2e_match "live, Running: wait is neither Ready nor Stalled: exit 2 at the timeout" "timed out 2$" "$out $rc"

  # ---- a second real upgrade while the first holds the slot
  if e2e_eventually 30 up_at_state "$live" second "Blocked AnotherUpgradeActive"; then
    run lkt status second
  else
    out="" && e2e_not_ok "live: a second upgrade waits for the slot" "$(up_state_of "$live" second)"
  fi
  e2e_match_lines "live, second upgrade: it waits its turn (AnotherUpgradeActive), its checks done" \
    "Assessment:  Blocked: waiting for another upgrade to finish, then it starts by itself
Target:      10\.6\.0\.2600 -> 10\.7\.0\.2800
Step:        step 3 of 8: BackupDeployments \(Succeeded\)" "$(sed -n 2,4p <<<"$out")"
  e2e_match "live, second upgrade: the message names the one it waits for" \
    "^Message:     another upgrade is in progress \($live/first(, phase Running)?\); this one starts when it has finished$" "$out"
  e2e_match_lines "live, second upgrade: the reason and its remedy, nothing to do" \
    "Reasons \(nothing to do: it waits its turn\):
  AnotherUpgradeActive: another upgrade is in progress \($live/first(, phase Running)?\); this one starts when it has finished
    Remedy: another TianqingUpgrade has started changing the system \(its PaasCheck or a later step began\); this one has passed its own checks and starts when that one has finished \(or is deleted\)\. .*$" \
    "$(sed -n '/^Reasons/,$p' <<<"$out")"

  # wait through the queue (and the first step after it) to the outcome
  "$bin" -n "$live" wait second --timeout=150s > "$tmp/wait-second.out" 2>&1 &
  bgpid=$!

  # ---- Succeeded
  run lkt wait first --timeout=120s
  e2e_eq "live, Succeeded: wait exits 0" "first: Ready 0" "$out $rc"
  run lkt status first
  json=$(ljson first)
  e2e_match_lines "live, Succeeded: Completed, every step done" "^Assessment:  Completed
Target:      10\.6\.0\.2600 -> 10\.7\.0\.2800
Step:        all 8 steps done \(8 succeeded, 0 skipped\)
Duration:    [0-9][0-9ms]* \($(jq -r .status.startedAt <<<"$json") to $(jq -r .status.completedAt <<<"$json")\)
Generation:  1 \(observed: this status is current\)$" "$(sed -n 2,6p <<<"$out")"
  e2e_match_lines "live, Succeeded: update.sh's exit code and last line" \
    "^Last output of update\.sh \(exited 0\):
  \| [0-9-]+ [0-9:]+ \[INFO\] 升级完成 upgrade finished successfully$" \
    "$(grep '^Last output' <<<"$out"; grep '^  | ' <<<"$out" | tail -n1)"
  e2e_check_fails "live, Succeeded: no estimate, no reasons" grep -Eq '^(Est\. left|Reasons)' <<<"$out"

  # ---- Failed: the second runs once the first is done; its update.sh fails
  # the wait started while it was queued
  wait "$bgpid"; rc=$?; bgpid=
  out=$(cat "$tmp/wait-second.out")
  e2e_match_lines "live, Failed: wait, started while it was queued, exits 1: the reason first, install_saas.log's last lines indented" \
    "second: Stalled: UpgradeFailed: Upgrade: update\.sh exited with 1 after [0-9]+ s; last lines of install_saas\.log: .*
  [0-9-]+ [0-9:]+ \[ERROR\] 升级失败 upgrade failed, see .*/install_saas\.log
1" "$(head -n1 <<<"$out"; tail -n1 <<<"$out"; echo "$rc")"
  e2e_eq "... every line after the first indented" "" "$(sed 1d <<<"$out" | grep -v '^  [^ ]')"
  run lkt status second
  e2e_match_lines "live, Failed: a person must act, at step 6 of 8" "^Assessment:  Failed: a person must act
Target:      10\.6\.0\.2600 -> 10\.7\.0\.2800
Step:        step 6 of 8: Upgrade \(Failed\)$" "$(sed -n 2,4p <<<"$out")"
  e2e_match "live, Failed: update.sh's exit code and its error" \
    "^Last output of update\.sh \(exited 1\):$" "$out"
  e2e_match "... its error line" "^[0-9-]+ [0-9:]+ \[ERROR\] 升级失败 upgrade failed, see .*/install_saas\.log$" \
    "$(screen_tail "$out" | tail -n1)"
  reasons=$(sed -n '/^Reasons/,$p' <<<"$out")
  e2e_match_lines "live, Failed: the reason, install_saas.log's last lines, README's remedy" \
    "Reasons \(a person must act\):
  UpgradeFailed: Upgrade: update\.sh exited with 1 after [0-9]+ s; last lines of install_saas\.log: .*
    [0-9-]+ [0-9:]+ \[ERROR\] 升级失败 upgrade failed, see .*/install_saas\.log
    Remedy: update\.sh exited non-zero: the message has the code and the tail of install_saas\.log; fix the cause with the vendor, then change the spec to retry$" \
    "$(head -n2 <<<"$reasons"; tail -n2 <<<"$reasons")"
  e2e_eq "... the log lines between indented under the reason" "" "$(sed '1,2d;$d' <<<"$reasons" | grep -v '^    [^ ]')"

  # ---- Waiting: for the maintenance window
  wstart=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
  up_apply "$live" later "  window: {start: \"$wstart\", end: \"$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)\"}"
  e2e_eventually 60 up_at_state "$live" later "Waiting WaitingForWindow"
  run lkt status later
  e2e_match_lines "live, Waiting: for the window, before SabreCleanup" "^Assessment:  Waiting for spec.window to open
Target:      10\.6\.0\.2600 -> 10\.7\.0\.2800
Step:        step 5 of 8: SabreCleanup \(Pending\)$" "$(sed -n 2,4p <<<"$out")"
  e2e_match "live, Waiting: the message says until when" \
    "^Message:     SabreCleanup: waiting for the maintenance window opening at $wstart$" "$out"
  e2e_check_fails "live, Waiting: no reasons (nothing to do)" grep -q '^Reasons' <<<"$out"
  run lkt wait later --timeout=1s
  e2e_match "live, Waiting: wait is neither Ready nor Stalled: exit 2 at the timeout" "timed out 2$" "$out $rc"
  k delete tqu later --wait=false >/dev/null 2>&1

  # ---- Paused, approve; Blocked
  e2e_eventually 30 sh -c "'$bin' -n $live status gate | grep -q '^Assessment:  Paused'"
  run lkt status gate
  e2e_match "live: a paused dry run says Paused" "^Assessment:  Paused: kubectl tianqing approve continues it$" "$out"
  run lkt approve gate
  e2e_eq "live: approve exits 0" "0" "$rc"
  run lkt wait gate --timeout=45s
  e2e_eq "live: wait then sees Ready: exit 0" "gate: Ready 0" "$out $rc"
  run lkt status gate
  e2e_match "live: status says the dry run completed" "^Assessment:  Completed \(dry run: nothing was changed\)$" "$out"
  run lkt plan gate
  e2e_match "live: plan shows the controller's plan, update.sh's password as ***" \
    "^STEP +ACTION +TARGET +DETAIL$" "$(head -n1 <<<"$out")"
  e2e_match "... with the PaasCheck command" "^PaasCheck +run +.*darwin-client" "$out"
  run "$bin" -n tq-plugin-nosecret wait nosecret --timeout=45s
  e2e_match "live: Blocked without its Secret: wait exits 1" "^nosecret: Stalled: SshSecret.* 1$" "$out $rc"
  run "$bin" -n tq-plugin-nosecret status nosecret
  e2e_match "live: status gives the remedy" "Remedy: create the Secret / add the key / grant get on it" "$out"
else
  e2e_not_ok "live: the fake world starts" "$(ls -la "$tmp/live" 2>&1)"
fi
up_cleanup

e2e_summary
