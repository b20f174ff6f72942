#!/usr/bin/env bash
# kill -9 of the controller during each of the eight steps, then a restart:
# the run completes, update.sh ran exactly once, the backups are intact and
# not duplicated.
#
# For each step (Validate, Preflight, BackupDeployments, PaasCheck,
# SabreCleanup, Upgrade, CdnTuning, Verify), in its own namespace and its
# own fake /qaxdata tree (so the fake tools' records are per case):
#   - the simulated cluster is put back as the vendor left it (sabre
#     objects present, darwin-cdn untuned);
#   - a controller (JSON debug log) runs a TianqingUpgrade with
#     initialVersion below 10.5.0.3000 (so SabreCleanup really deletes) and
#     is killed with SIGKILL inside that step, the moment its log shows the
#     point (see start_armed): Validate at {"msg":"step started"}; Preflight
#     while it extracts the new package from spec.packages.archive;
#     BackupDeployments at its start, then (next controller) right after
#     backup.json recorded the backup, before status did; PaasCheck while
#     darwin-client runs (paas_delay); SabreCleanup between deleting the
#     Deployment and the Service; Upgrade at its start, then (next
#     controller) right after it launched update.sh, before status recorded
#     it; CdnTuning after the patch, before status; Verify while it waits
#     for a rollout (the stand-in kubelet stopped until after the restart).
#     Windows of microseconds before a status write, closer than a kill can
#     be aimed, and the one between the backup files' rename and
#     backup.json, are acted out (the state such a kill leaves is made by
#     hand, said so in the output);
#   - a new controller finishes the run, and then: phase Succeeded (kubectl
#     wait --for=condition=Ready), every step Succeeded, update.sh ran
#     exactly once and exited 0 (status.upgrade.exitCode 0, the
#     supervisor's exit file), one deploy_*.json and one deploy_*.log whose
#     sha256 match status.backup and no backup temp file, the sabre objects
#     gone with their manifests saved, darwin-cdn tuned, no step with more
#     than 2 attempts and at most one retried, no vendor process left; per
#     step: update.sh kept running across the kills and was re-attached
#     (same pid, no second start), darwin-cdn not patched twice, the
#     recorded backup reused, the sabre Deployment found already gone;
#   - the resource is deleted.
# Then:
#   - kill -9 while update.sh runs, the controller kept DOWN until update.sh
#     has finished: the restarted controller takes the result from the exit
#     file and completes without running it again;
#   - kill -9 during PaasCheck, then TWO controllers with --leader-elect
#     started at once (distinct identities, so the audit log tells them
#     apart): only one becomes the leader and acts, the other writes
#     nothing, and the run completes once.
# Every controller log is searched for AddressSanitizer/UBSan reports (CI
# runs this script with the sanitizer build too).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
source "$here/armed_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
T0=$(date +%s)

STEPS=(Validate Preflight BackupDeployments PaasCheck SabreCleanup Upgrade CdnTuning Verify)
ALL_LOGS=()        # every controller log, for the sanitizer check
CASE_DIRS=()       # every fake tree, for the last leftover-process check

crash_cleanup() {
  local d p
  up_kubelet_stop
  for n in "${!UP_PIDS[@]}"; do up_stop "$n" KILL; done
  # vendor processes of our trees that a killed controller left behind
  for d in "${CASE_DIRS[@]}"; do
    for p in $(pgrep -f -- "$d/qax/cli" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  if [ -n "${TQU_CRASH_KEEP:-}" ]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap crash_cleanup EXIT

# ------------------------------------------------------------- helpers

# case_world DIR NS [make-qaxdata options]: a fresh fake tree in DIR/qax,
# the simulated cluster as the vendor left it (sabre objects back,
# darwin-cdn untuned, every Deployment rolled out), the SSH Secret in NS.
case_world() {
  local dir=$1 ns=$2
  shift 2
  up_world "$dir" "$@" || return 1
  CASE_DIRS+=("$dir")
  kubectl replace --save-config -f "$TQU_REPO/tests/fixtures/darwin-cdn-untuned.yaml" >/dev/null || return 1
  "$TQU_REPO/tests/fixtures/set-rollout.sh" default darwin-cdn >/dev/null || return 1
  up_secret "$ns"
}

# start NAME [flags]: a controller watching only $ns (other tests' leftover
# resources in the shared control plane cannot hold the one-upgrade slot).
start() {
  local name=$1
  shift
  ALL_LOGS+=("$UP_DIR/$name.log")
  up_controller "$name" --namespace "$ns" "$@"
}

# kill9 NAME: SIGKILL, reaped.
kill9() {
  local pid=${UP_PIDS[$1]:-}
  [ -n "$pid" ] || return 1
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  e2e_eventually 10 bash -c "! kill -0 $pid 2>/dev/null"   # started by start_armed: not our child
  unset "UP_PIDS[$1]"
}

# start_armed NAME ERE [flags]: start a controller (as start) whose output
# goes through armed_reader, which writes it to NAME.log and SIGKILLs the
# controller the moment it writes a line matching ERE (a Perl regex): the
# kill comes well within a millisecond of the line, from the process that
# reads it (a tail -F | grep chain was seen to be 10+ ms late, past the
# status write that ends a short step). NAME.fired is created when it fired.
start_armed() {
  local name=$1 ere=$2
  shift 2
  ALL_LOGS+=("$UP_DIR/$name.log")
  rm -f "$UP_DIR/$name.pid" "$UP_DIR/$name.fired"
  # in a subshell that reaps it, so that bash does not report its death
  # by a signal it did not send itself
  (
    "$TQU_BIN" --kubeconfig "${UP_KUBECONFIG:-$TQU_KUBECONFIG_ADMIN}" --health-addr 127.0.0.1:0 \
      --log-format json --log-level debug --namespace "$ns" --allowed-root "$UP_DIR" --allowed-root /qaxdata "$@" \
      > >(armed_reader "$UP_DIR/$name" "$ere") 2>&1 &
    echo "$!" > "$UP_DIR/$name.pid.tmp" && mv "$UP_DIR/$name.pid.tmp" "$UP_DIR/$name.pid"
    wait "$!"
  ) 2>/dev/null &
  e2e_eventually 10 test -s "$UP_DIR/$name.pid"
  UP_PIDS[$name]=$(cat "$UP_DIR/$name.pid")
}

# armed_reader: tests/e2e/armed_lib.sh

started_re() { printf '"msg":"step started".*"step":"%s"' "$1"; }

tqu_json() { kubectl -n "$ns" get tqu "$name" -o json 2>/dev/null; }
steps_line() { jq -r '[.status.steps[]? | "\(.name)=\(.state)/\(.attempts)"] | join(" ")' <<<"$1"; }

check_tuned() {
  local d
  d=$(kubectl -n default get deploy darwin-cdn -o json) || return 1
  jq -e '.spec.template.spec.volumes[]? | select(.name=="darwin-cdn-data")
         | .hostPath.type=="DirectoryOrCreate" and .hostPath.path=="/qaxdata/s/services/data/darwin-cdn-data"' <<<"$d" >/dev/null &&
  jq -e '.spec.template.spec.containers[] | select(.name=="darwin-cdn") | .volumeMounts[]?
         | select(.name=="darwin-cdn-data") | .mountPath=="/home/s/darwin-cdn/data/"' <<<"$d" >/dev/null &&
  jq -e '.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[]?
         | .topologyKey=="kubernetes.io/hostname" and
           (.labelSelector.matchExpressions[] | .key=="app" and .operator=="In" and .values==["darwin-cdn"])' <<<"$d" >/dev/null
}

# at_kill: what the run had done when the controller was killed (a note)
at_kill() {
  local sf
  sf=$(find "$UP_DIR/backups" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n1)
  printf 'state folder [%s]; sabre Deployment %s, Service %s; darwin-cdn %s' \
    "$( [ -n "$sf" ] && ls -A "$sf" | paste -sd' ')" \
    "$(kubectl -n default-sabre-server get deploy sabre-server >/dev/null 2>&1 && echo present || echo gone)" \
    "$(kubectl -n default-sabre-server get svc sabre-server-service >/dev/null 2>&1 && echo present || echo gone)" \
    "$(check_tuned && echo tuned || echo untuned)"
}

# vendor processes still running from this case's tree
vendor_procs() { pgrep -af -- "$UP_DIR/qax/cli" 2>/dev/null; }
no_vendor_procs() { [ -z "$(vendor_procs)" ]; }

# sanitizer reports in the given logs
san_reports() { grep -aE -m3 -- 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)' "$@" 2>/dev/null; }

# check_outcome LABEL: everything the criterion asks for, once the run is over.
check_outcome() {
  local p=$1 last=${2:-ctl2} json folder n_json n_log list manifests
  if kubectl -n "$ns" wait --for=condition=Ready "tqu/$name" --timeout=90s >/dev/null 2>&1; then
    e2e_ok "$p: after the restart the run completes (Ready)"
  else
    e2e_not_ok "$p: after the restart the run completes (Ready)" \
      "phase $(up_phase "$ns" "$name") reason $(up_reason "$ns" "$name")" \
      "$(steps_line "$(tqu_json)")" "$(tail -n 15 "$UP_DIR/$last.log" 2>/dev/null)"
  fi
  json=$(tqu_json)
  e2e_eq "$p: phase Succeeded" Succeeded "$(jq -r .status.phase <<<"$json")"
  e2e_eq "$p: every step Succeeded" \
    "Validate Preflight BackupDeployments PaasCheck SabreCleanup Upgrade CdnTuning Verify" \
    "$(jq -r '[.status.steps[] | select(.state=="Succeeded") | .name] | join(" ")' <<<"$json")"
  e2e_eq "$p: no step attempted more than twice" "" \
    "$(jq -r '[.status.steps[] | select(.attempts > 2) | "\(.name) \(.attempts)"] | join(", ")' <<<"$json")"
  e2e_check "$p: at most one step was retried (the interrupted one)" \
    jq -e '[.status.steps[] | select(.attempts > 1)] | length <= 1' <<<"$json"

  e2e_eq "$p: update.sh ran exactly once" 1 "$(up_update_calls)"
  e2e_eq "$p: update.sh exited 0 (its record)" 0 "$(cat "$TQU_FAKE_RECORD/update.sh.1.exit" 2>/dev/null)"
  e2e_eq "$p: status.upgrade.exitCode is 0" 0 "$(jq -r '.status.upgrade.exitCode // "none"' <<<"$json")"

  folder=$(jq -r '.status.backup.folder // ""' <<<"$json")
  list=$(jq -r '.status.backup.listFile // ""' <<<"$json")
  manifests=$(jq -r '.status.backup.manifestsFile // ""' <<<"$json")
  n_json=$(find "$folder" -maxdepth 1 -name 'deploy_*.json' 2>/dev/null | wc -l)
  n_log=$(find "$folder" -maxdepth 1 -name 'deploy_*.log' 2>/dev/null | wc -l)
  e2e_eq "$p: one deploy_*.json and one deploy_*.log in the state folder" "1 1" "$n_json $n_log"
  e2e_eq "$p: no temp file of a backup left" "" "$(find "$folder" -maxdepth 1 -name '.deploy_*' 2>/dev/null)"
  e2e_eq "$p: deploy_*.log sha256 matches status.backup" "$(jq -r .status.backup.listSha256 <<<"$json")" \
    "$(sha256sum "$list" 2>/dev/null | cut -d' ' -f1)"
  e2e_eq "$p: deploy_*.json sha256 matches status.backup" "$(jq -r .status.backup.manifestsSha256 <<<"$json")" \
    "$(sha256sum "$manifests" 2>/dev/null | cut -d' ' -f1)"
  e2e_eq "$p: the backup holds every Deployment, sabre-server included" \
    "$(jq -r .status.backup.deploymentCount <<<"$json") true" \
    "$(jq -r '(.items | length | tostring) + " " + ([.items[].metadata.name] | index("sabre-server") != null | tostring)' "$manifests" 2>/dev/null)"

  e2e_check_fails "$p: sabre-server Deployment deleted" kubectl -n default-sabre-server get deploy sabre-server
  e2e_check_fails "$p: sabre-server-service deleted" kubectl -n default-sabre-server get svc sabre-server-service
  e2e_eq "$p: sabre manifests saved" "sabre-server sabre-server-service" \
    "$(jq -r .metadata.name "$folder/sabre-server.deployment.json" 2>/dev/null) $(jq -r .metadata.name "$folder/sabre-server-service.service.json" 2>/dev/null)"
  e2e_check "$p: darwin-cdn tuned" check_tuned

  e2e_eq "$p: the supervisor recorded update.sh's exit (exit file, exit code 0)" 0 \
    "$(jq -r .exitCode "$folder/upgrade-g1/exit" 2>/dev/null)"
  if e2e_eventually 15 no_vendor_procs; then e2e_ok "$p: no vendor process left"
  else e2e_not_ok "$p: no vendor process left" "$(vendor_procs)"; fi
}

# finish_case: stop the controllers and the kubelet, delete the resource.
finish_case() {
  local n
  # SIGTERM to all, reaped after the deletion (a graceful stop takes ~1 s)
  for n in "${!UP_PIDS[@]}"; do kill -TERM "${UP_PIDS[$n]}" 2>/dev/null; done
  up_kubelet_stop
  if kubectl -n "$ns" delete tqu "$name" --timeout=30s >/dev/null 2>&1; then
    e2e_ok "$p: the TianqingUpgrade is deleted at the end"
  else
    e2e_not_ok "$p: the TianqingUpgrade is deleted at the end" "$(kubectl -n "$ns" get tqu "$name" -o yaml 2>&1 | head -30)"
    kubectl -n "$ns" patch tqu "$name" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
    kubectl -n "$ns" delete tqu "$name" --wait=false >/dev/null 2>&1
  fi
  local pid
  for n in "${!UP_PIDS[@]}"; do
    pid=${UP_PIDS[$n]}
    up_stop "$n" TERM
    e2e_eventually 30 bash -c "! kill -0 $pid 2>/dev/null"   # not our child if start_armed started it
  done
}

# ------------------------------------------------ kill -9 during each step

# kill_at CTL STEP LABEL armed|armed+ | file PATH [DELAY]: the SIGKILL of
# controller CTL, either by its armed reader (see start_armed) or DELAY s
# after PATH appears; then check that the kill landed inside STEP (its
# outcome not recorded yet), and note what the run had done by then.
# armed+: the line that armed the kill is the step's last act before its
# outcome is written to status, microseconds later: closer than a kill can
# be aimed (~0.1 ms after the line). When that write got through, the kill
# is acted out as landing just before it (see act_out_before_write).
kill_at() {
  local ctl=$1 step=$2 label=$3 kind=$4 arg=${5:-} delay=${6:-0} ok=1 json
  case $kind in
  armed|armed+) e2e_eventually 60 test -e "$UP_DIR/$ctl.fired" || ok=0 ;;
  file) if e2e_eventually 60 test -s "$arg"; then sleep "$delay"; else ok=0; fi ;;
  esac
  kill9 "$ctl"
  json=$(tqu_json)
  if [ "$kind" = armed+ ] && [ "$(jq -r --arg s "$step" '.status.steps[]? | select(.name==$s) | .state' <<<"$json")" != Running ]; then
    echo "# $p: $label: the outcome write won by microseconds ($(steps_line "$json")): acted out the kill before it"
    act_out_before_write "$step"
    json=$(tqu_json)
  fi
  if [ "$ok" = 1 ]; then e2e_ok "$p: $label: killed"
  else e2e_not_ok "$p: $label: killed" "the moment never came ($kind $arg)" "$(tail -n 20 "$UP_DIR/$ctl.log")"; fi
  e2e_eq "$p: $label: the kill landed inside $step (its outcome not yet recorded)" Running \
    "$(jq -r --arg s "$step" '.status.steps[]? | select(.name==$s) | .state' <<<"$json")"
  echo "# $p: $label: at the kill: $(steps_line "$json"); $(at_kill)"
}

# act_out_before_write STEP: put status back as a kill just before STEP's
# outcome write leaves it: STEP Running, later steps Pending, nothing they
# (or STEP) reported (status.backup from BackupDeployments on,
# status.upgrade from Upgrade on). The controller is dead: nothing races.
act_out_before_write() {
  local st
  st=$(tqu_json | jq -c --arg s "$1" '.status as $st | ($st.steps | map(.name) | index($s)) as $i
    | $st | .currentStep = $s | .phase = "Running"
    | .steps |= [to_entries[] | if .key < $i then .value
                 elif .key == $i then (.value | .state = "Running" | del(.completedAt))
                 else {name: .value.name, state: "Pending", attempts: 0} end]
    | if $i <= 2 then del(.backup) else . end
    | if $i <= 5 then del(.upgrade) else . end')
  kubectl -n "$ns" patch tqu "$name" --subresource=status --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/status\",\"value\":$st}]" >/dev/null
}

crash_case() {
  local step=$1 lc=${1,,} p="kill -9 in $1" world=(--scenario update_seconds=3) extra='' upid='' cdn_gen=''
  ns=crash-$lc name=to-2800
  case $step in
  Preflight) world+=(--archive) ;;
  PaasCheck) world+=(--scenario paas_delay=3) ;;
  esac
  if ! case_world "$tmp/$lc" "$ns" "${world[@]}"; then
    e2e_not_ok "$p: fixtures"
    return
  fi
  # Preflight extracts the new package from its archive (a kill mid-step)
  [ "$step" = Preflight ] && extra="  packages: {root: $PACKAGES_ROOT, archive: $(basename "$ARCHIVE")}"
  [ "$step" = Verify ] || up_kubelet_start
  # ctl1 is armed with the moment to die at, where the log tells it
  local arm=''
  case $step in
  Validate|BackupDeployments|Upgrade) arm=$(started_re "$step") ;;   # at its start
  Preflight) arm='"msg":"extracting the new package"' ;;            # mid-step: tar runs
  SabreCleanup) arm='"msg":"deleted the old sabre object".*"kind":"Deployment"' ;;  # between the deletions
  CdnTuning) arm='"msg":"tuned the cdn Deployment"' ;;              # patched, outcome not recorded
  Verify) arm='"reason":"WaitingForRollout"' ;;                     # waiting for darwin-cdn's rollout
  esac
  if [ -n "$arm" ]; then start_armed ctl1 "$arm"; else start ctl1; fi
  UP_INITIAL=10.3.0.4200 up_apply "$ns" "$name" "$extra"
  local next=ctl2

  case $step in
  Validate) kill_at ctl1 Validate "at its start" armed+ ;;
  Preflight) kill_at ctl1 Preflight "while extracting the package" armed ;;
  BackupDeployments)
    kill_at ctl1 BackupDeployments "at its start" armed
    # Then act out the step's narrowest window, which a kill cannot be
    # aimed at: both files renamed into place (a temp file of the attempt
    # left too), the kill before backup.json recorded them.
    local sf
    sf=$UP_DIR/backups/$ns.$name.$(tqu_json | jq -r .metadata.uid)
    mkdir -p "$sf" && chmod 0700 "$sf"
    rm -f "$sf/backup.json"
    kubectl get deployment -A --no-headers > "$sf/deploy_20000101-000000.log"
    kubectl get deployment -A -o json > "$sf/deploy_20000101-000000.json"
    : > "$sf/.deploy_20000101-000000.rows.Xq3zPa"
    echo "# $p: acted out a kill between the files' rename and backup.json: $(ls -A "$sf" | paste -sd' ')"
    # The next controller dies once it has recorded its backup in
    # backup.json, before status says so.
    start_armed ctl2 '"msg":"backed up the Deployments"'
    kill_at ctl2 BackupDeployments "after backup.json, before status" armed+
    e2e_eq "$p: after backup.json: backup.json there, status.backup not" "yes null" \
      "$(test -s "$sf/backup.json" && echo yes || echo no) $(tqu_json | jq -c .status.backup)"
    echo "# $p: after backup.json: $(ls -A "$sf" | paste -sd' ')"
    next=ctl3 ;;
  PaasCheck)
    # darwin-client is running its (slowed) paas_check
    kill_at ctl1 PaasCheck "while darwin-client runs" file "$TQU_FAKE_RECORD/darwin-client.calls" 1 ;;
  SabreCleanup) kill_at ctl1 SabreCleanup "between the two deletions" armed ;;
  Upgrade)
    # at its start (before update.sh is launched, or while it is) ...
    kill_at ctl1 Upgrade "at its start" armed
    # ... and the next one right after it launched update.sh, before status
    # can record it (or, if the first had launched it, while it runs)
    if [ -e "$TQU_FAKE_RECORD/update.sh.calls" ]; then
      start ctl2
      kill_at ctl2 Upgrade "while update.sh runs (launched by the first)" file "$TQU_FAKE_RECORD/update.sh.1.argv" 0.5
    else
      # decided to launch: status.launch written, the launch marker not yet
      start_armed ctl2 '"msg":"update.sh launch recorded in status"'
      kill_at ctl2 Upgrade "after status.launch, before the launch marker" armed
      e2e_eq "$p: after status.launch: it records generation 1, outcome Unknown" "1 Unknown" \
        "$(tqu_json | jq -r '"\(.status.launch.generation) \(.status.launch.outcome)"')"
      if [ "$(up_update_calls)" = 0 ] && ! ls "$UP_DIR"/backups/*/upgrade-g*/launch >/dev/null 2>&1; then
        start_armed ctl3 '"msg":"update.sh started"'
        kill_at ctl3 Upgrade "right after update.sh was launched" armed
        # the status write recording the launch follows within microseconds:
        # if it got through, act out the kill before it
        if [ "$(tqu_json | jq -c '.status.upgrade')" != null ]; then
          echo "# $p: the launch reached status before the kill: acted out the kill before that write"
          act_out_before_write Upgrade
        fi
        e2e_eq "$p: right after the launch: status.upgrade does not know of it yet" null \
          "$(tqu_json | jq -c '.status.upgrade')"
      else
        # the supervisor was forked before the kill landed: it runs
        echo "# $p: update.sh was launched before the kill landed; the next controller follows it"
        start ctl3
        kill_at ctl3 Upgrade "while update.sh runs" file "$TQU_FAKE_RECORD/update.sh.1.argv" 0.5
      fi
    fi
    upid=$(pgrep -f -- "^sh update.sh -s $OLD_DIR " | head -n1)
    e2e_match "$p: update.sh keeps running across the kills" '^[0-9]+$' "$upid"
    next=ctl4 ;;
  CdnTuning)
    kill_at ctl1 CdnTuning "after the patch, before status" armed+
    cdn_gen=$(kubectl -n default get deploy darwin-cdn -o jsonpath='{.metadata.generation}') ;;
  Verify) kill_at ctl1 Verify "waiting for the rollout" armed ;;
  esac

  sleep 0.3
  if ! start "$next"; then e2e_not_ok "$p: controller restarts" "$(tail "$UP_DIR/$next.log")"; return; fi
  if [ "$step" = Verify ]; then
    # the restarted controller picks up the wait, then the rollout arrives
    if e2e_eventually 20 grep -q '"reason":"WaitingForRollout"' "$UP_DIR/$next.log"; then
      e2e_ok "$p: the restarted controller resumes waiting for the rollout"
    else
      e2e_not_ok "$p: the restarted controller resumes waiting for the rollout" "$(tail -n 20 "$UP_DIR/$next.log")"
    fi
    up_kubelet_start
  fi
  check_outcome "$p" "$next"
  case $step in
  Upgrade)
    e2e_eq "$p: the last controller re-attached to that update.sh (its pid in status)" "$upid" \
      "$(tqu_json | jq -r '.status.upgrade.pid // ""')"
    e2e_eq "$p: the last controller did not start update.sh" 0 \
      "$(grep -c '"msg":"update.sh started"' "$UP_DIR/$next.log")" ;;
  CdnTuning)
    e2e_eq "$p: darwin-cdn was not patched again after the restart" "$cdn_gen" \
      "$(kubectl -n default get deploy darwin-cdn -o jsonpath='{.metadata.generation}')" ;;
  BackupDeployments)
    e2e_eq "$p: the last controller reused the recorded backup (took none)" 0 \
      "$(grep -c '"msg":"backed up the Deployments"' "$UP_DIR/$next.log")" ;;
  SabreCleanup)
    e2e_match "$p: the restarted controller found the Deployment already gone" "already gone" \
      "$(tqu_json | jq -r '.status.steps[] | select(.name=="SabreCleanup") | .message')" ;;
  esac
  finish_case
}

for s in "${STEPS[@]}"; do
  t=$(date +%s)
  crash_case "$s"
  echo "# kill -9 in $s: $(( $(date +%s) - t )) s"
done

# ---------------------- kill -9, controller down until update.sh has ended
t=$(date +%s)
p="down while update.sh ends"
ns=crash-down name=to-2800
if case_world "$tmp/down" "$ns" --scenario update_seconds=4; then
  up_kubelet_start
  start ctl1
  UP_INITIAL=10.3.0.4200 up_apply "$ns" "$name"
  kill_at ctl1 Upgrade "while update.sh runs" file "$TQU_FAKE_RECORD/update.sh.1.argv" 0.5
  sdir=$(find "$UP_DIR/backups" -maxdepth 2 -type d -name 'upgrade-g*' | head -n1)
  if e2e_eventually 20 test -s "$sdir/exit"; then e2e_ok "$p: update.sh ended alone; its exit file was written"
  else e2e_not_ok "$p: update.sh ended alone; its exit file was written" "$(ls -la "$sdir" 2>&1)"; fi
  e2e_eq "$p: the exit file records exit code 0" 0 "$(jq -r .exitCode "$sdir/exit" 2>/dev/null)"
  e2e_check "$p: nothing of update.sh runs any more" no_vendor_procs
  e2e_eq "$p: status still shows Upgrade Running (no controller saw the end)" Running \
    "$(tqu_json | jq -r '.status.steps[] | select(.name=="Upgrade") | .state')"
  start ctl2
  check_outcome "$p"
  e2e_eq "$p: the restarted controller did not start update.sh" 0 \
    "$(grep -c '"msg":"update.sh started"' "$UP_DIR/ctl2.log")"
  e2e_eq "$p: status.upgrade.completedAt is the exit file's finishedAt" "$(jq -r .finishedAt "$sdir/exit" 2>/dev/null)" \
    "$(tqu_json | jq -r '.status.upgrade.completedAt // ""')"
  finish_case
else
  e2e_not_ok "$p: fixtures"
fi

echo "# $p: $(( $(date +%s) - t )) s"

# ------------------ kill -9, then two controllers with --leader-elect at once
t=$(date +%s)
p="two leader-elect controllers after kill -9"
ns=crash-leader name=to-2800
if case_world "$tmp/leader" "$ns" --scenario update_seconds=3 --scenario paas_delay=2; then
  LE=(--leader-elect --leader-election-namespace "$ns")
  up_kubelet_start
  start ctl1 "${LE[@]}"
  UP_INITIAL=10.3.0.4200 up_apply "$ns" "$name"
  kill_at ctl1 PaasCheck "the leader, while darwin-client runs" file "$TQU_FAKE_RECORD/darwin-client.calls" 0.5
  mark=$(stat -c %s "$TQU_AUDIT_LOG")
  # both at once: launched back to back, then both waited for
  for who in a b; do
    ALL_LOGS+=("$UP_DIR/$who.log")
    kc=$TQU_KUBECONFIG_CERT
    [ "$who" = b ] && kc=$TQU_KUBECONFIG_TOKEN
    "$TQU_BIN" --kubeconfig "$kc" --health-addr 127.0.0.1:0 --log-format json --log-level debug \
      --namespace "$ns" "${LE[@]}" --allowed-root "$UP_DIR" --allowed-root /qaxdata >>"$UP_DIR/$who.log" 2>&1 &
    UP_PIDS[$who]=$!
  done
  e2e_check "$p: both controllers start" e2e_eventually 20 \
    bash -c "grep -q '\"msg\":\"controller started\"' '$UP_DIR/a.log' && grep -q '\"msg\":\"controller started\"' '$UP_DIR/b.log'"
  check_outcome "$p" a
  leads=$(grep -c '"msg":"became the leader"' "$UP_DIR/a.log")" "$(grep -c '"msg":"became the leader"' "$UP_DIR/b.log")
  e2e_match "$p: exactly one of them became the leader" '^(1 0|0 1)$' "$leads"
  if [ "$leads" = "1 0" ]; then leader=a standby=b su=tqu-token-user; else leader=b standby=a su=tqu-cert-user; fi
  e2e_check "$p: the leader ($leader) ran the remaining steps" \
    grep -q '"msg":"step started".*"step":"Verify"' "$UP_DIR/$leader.log"
  e2e_eq "$p: the standby ran no step" 0 "$(grep -c '"msg":"step started"' "$UP_DIR/$standby.log")"
  # (its tries at the Lease aside: losing the race for it is allowed)
  e2e_eq "$p: the standby wrote nothing else to the API server" "" \
    "$(tail -c +"$((mark + 1))" "$TQU_AUDIT_LOG" | jq -cR --arg u "$su" \
       'fromjson? | select(.user.username == $u and .objectRef.resource != "leases" and
        (.verb | IN("create","update","patch","delete","deletecollection"))) | .objectRef.resource' | sort -u | paste -sd' ')"
  e2e_eq "$p: the PaaS check ran twice in all (before the kill, and once after)" 2 \
    "$(up_paas_calls)"
  finish_case
else
  e2e_not_ok "$p: fixtures"
fi

echo "# $p: $(( $(date +%s) - t )) s"

# ----------------------------------------------------------- at the end
# Leave the simulated cluster as the other tests expect it.
kubectl apply -f "$TQU_REPO/tests/fixtures/cluster-objects.yaml" >/dev/null 2>&1
kubectl replace --save-config -f "$TQU_REPO/tests/fixtures/darwin-cdn-untuned.yaml" >/dev/null 2>&1
"$TQU_REPO/tests/fixtures/set-rollout.sh" --all >/dev/null 2>&1

reports=$(san_reports "${ALL_LOGS[@]}")
e2e_eq "no AddressSanitizer/UBSan report in any controller log (${#ALL_LOGS[@]} logs)" "" "$reports"
echo "# took $(( $(date +%s) - T0 )) s"
e2e_summary
exit $?
