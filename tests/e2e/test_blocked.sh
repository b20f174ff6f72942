#!/usr/bin/env bash
# Bad and blocked situations, table-driven: each ends in its own reason and
# message, Stalled=True exactly where a person must act, and nothing
# happens beyond what is documented for the steps that ran.
#
# One controller for the whole script. Each case gets its own namespace,
# its own fake /qaxdata tree (make-qaxdata.sh options, scenario) and the
# simulated cluster put back as the vendor left it (sabre objects present,
# darwin-cdn untuned); the TianqingUpgrade is deleted after the case (one
# upgrade at a time per cluster: a Blocked one holds the slot until then).
#
# For every case: phase and the Stalled (else Ready) condition's reason,
# the message, kubectl wait --for=condition=Stalled, a Warning Event with
# the reason, status.steps (the steps before Succeeded/Skipped, the
# blocking one Blocked/Failed, the later ones Pending), and the side
# effects named in the table:
#   nostate   no file at all in the request's state/backup folder
#   nobackup  no deploy_* backup files
#   backup    exactly one deploy_*.json and one deploy_*.log
#   nopaas    darwin-client's paas_check never ran
#   norun     update.sh never ran (records/update.sh.calls absent or 0)
#   ran1      update.sh ran exactly once
#   sabre     sabre-server and sabre-server-service still there
#   nosabre   both gone (SabreCleanup ran: documented)
#   cdn       darwin-cdn untouched (no darwin-cdn-data volume, no anti-affinity)
#   tuned     darwin-cdn tuned (CdnTuning ran: documented)
#   pristine  update.sh not edited, no .orig copy of it
# Folders are confined: the controller runs with --allowed-root $tmp and
# /qaxdata (up_controller); $outside is a folder beside them holding copies
# of the packages whose darwin-client and update.sh only leave a marker.
# Then: a second upgrade while one waits for its window
# (AnotherUpgradeActive, resumes when the first is deleted), and a Blocked
# case plus one waiting behind it left alone for 70 s: re-checked by the
# controller, yet no status write and no Event (resourceVersion and the
# audit log).
#
# TQU_CASES=REGEX runs only the table rows whose name matches (no idle check).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
outside=$(mktemp -d)
# as the controller names them in messages: symbolic links followed
tmp=$(realpath "$tmp") outside=$(realpath "$outside")
T0=$(date +%s)
FIX=$TQU_REPO/tests/fixtures

trap 'up_cleanup_cases "$tmp"; rm -rf "$outside"' EXIT

# ------------------------------------------------------------------ helpers

state_files() { find "$UP_DIR/backups" -type f 2>/dev/null | wc -l; }

# outside_packages NAME: $outside/NAME/cli, a copy of the case's packages
# outside the allowed roots, whose darwin-client and update.sh (run as root
# by a careless controller) only append to $outside/NAME/marker.
outside_packages() {
  local d=$outside/$1 f
  mkdir -p "$d" && cp -a "$PACKAGES_ROOT" "$d/cli" || return 1
  for f in "${OLD_DARWIN_CLIENT/#"$PACKAGES_ROOT"/$d/cli}" "${UPDATE_SH/#"$PACKAGES_ROOT"/$d/cli}"; do
    printf '#!/bin/sh\necho "$0 ran" >> %q\n' "$d/marker" > "$f" && chmod 755 "$f" || return 1
  done
}

# steps_shape NS NAME STEP STATE: the steps before STEP Succeeded or
# Skipped, STEP in STATE, the ones after Pending. STEP "-": all done.
steps_shape() {
  kubectl -n "$1" get tqu "$2" -o json | jq -e --arg step "$3" --arg state "$4" '
    [.status.steps[] | .name] as $names |
    ($names | index($step)) as $i |
    [.status.steps | to_entries[] |
      if $i == null then (.value.state == "Succeeded" or .value.state == "Skipped")
      elif .key < $i then (.value.state == "Succeeded" or .value.state == "Skipped")
      elif .key == $i then .value.state == $state
      else .value.state == "Pending" end] | all' >/dev/null
}

check_effects() {  # check_effects LABEL NS NAME EFFECTS(comma list)
  local label=$1 ns=$2 name=$3 e
  local IFS=,
  for e in $4; do
    case $e in
    nostate) e2e_eq "$label: no file in the state folder" 0 "$(state_files)" ;;
    nobackup) e2e_eq "$label: no backup files" 0 "$(find "$UP_DIR/backups" -name 'deploy_*' 2>/dev/null | wc -l)" ;;
    backup) e2e_eq "$label: one backup (deploy_*.json and .log)" "1 1" \
      "$(find "$UP_DIR/backups" -name 'deploy_*.json' | wc -l) $(find "$UP_DIR/backups" -name 'deploy_*.log' | wc -l)" ;;
    nopaas) e2e_eq "$label: the PaaS check never ran" 0 "$(up_paas_calls)" ;;
    norun) e2e_eq "$label: update.sh never ran" 0 "$(up_update_calls)" ;;
    ran1) e2e_eq "$label: update.sh ran exactly once" 1 "$(up_update_calls)" ;;
    sabre) e2e_check "$label: sabre Deployment and Service still there" up_sabre_present ;;
    nosabre) e2e_check "$label: sabre Deployment and Service deleted (SabreCleanup ran)" up_sabre_gone ;;
    cdn) e2e_check "$label: darwin-cdn untouched" up_cdn_untouched ;;
    tuned) e2e_check "$label: darwin-cdn tuned (CdnTuning ran)" up_cdn_tuned ;;
    pristine) e2e_check "$label: update.sh not edited, no copy of it kept" \
      bash -c "! grep -q -- 'execute.type=k8s --paas.check=false' '$UPDATE_SH' && [ -z \"\$(find '$UP_DIR/backups' -name '*.orig' 2>/dev/null)\" ]" ;;
    *) e2e_not_ok "$label: unknown effect $e" ;;
    esac
  done
}

# ------------------------------------------------------------- the table
# name | make-qaxdata options | setup (eval'd, after the tree and the Secret) |
# spec overrides (" ;; " between lines; eval'd) | phase | step | reason |
# message regex | side effects | extra checks (a function, or -)
# Used in the table (eval'd): a window that opens in an hour; $NONE: nothing
# at all happened; $CHECKED: the checks ran (a backup, the PaaS check), nothing
# was changed.
# shellcheck disable=SC2034
WIN_FUTURE_START=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
# shellcheck disable=SC2034
WIN_FUTURE_END=$(date -u -d '+3 hours' +%Y-%m-%dT%H:%M:%SZ)
# shellcheck disable=SC2034
NONE=nostate,nobackup,nopaas,norun,sabre,cdn,pristine
# shellcheck disable=SC2034
CHECKED=backup,norun,sabre,cdn,pristine
TABLE=$(cat <<'EOF'
unsupported-source | | | fromVersion: 10.6.0.2700 | Failed | Validate | UnsupportedSourceVersion | 10\.6\.0\.2700 is not a supported starting point for 10\.7\.0\.2800 \(supported: 10\.3\.0\.3200 \.\.\. 10\.7\.0\.2704, 31 versions\).*TAC | $NONE | -
unsupported-target | | | toVersion: 10.8.0.1000 | Failed | Validate | UnsupportedTargetVersion | no upgrade route to 10\.8\.0\.1000 .*\(targets: 10\.7\.0\.2800\) | $NONE | -
non-standard | | | initialVersion: 10.2.0.1000 | Failed | Validate | NonStandardInstallation | initialVersion 10\.2\.0\.1000 is not one of the supported versions for 10\.7\.0\.2800 .*not a standard installation | $NONE | -
downgrade | | | toVersion: 10.6.0.2000 | Failed | Validate | DowngradeOrSameVersion | toVersion 10\.6\.0\.2000 is older than fromVersion 10\.6\.0\.2600: downgrades are not supported | $NONE | -
same-version | | | toVersion: 10.6.0.2600 | Failed | Validate | DowngradeOrSameVersion | fromVersion and toVersion are both 10\.6\.0\.2600.*nothing to upgrade | $NONE | -
initial-after-from | | | initialVersion: 10.6.0.2602 | Failed | Validate | InitialAfterFrom | initialVersion 10\.6\.0\.2602 is newer than fromVersion 10\.6\.0\.2600, which is impossible | $NONE | -
window-invalid | | | window: {start: '2030-01-02T00:00:00Z', end: '2030-01-01T00:00:00Z'} | Failed | Validate | InvalidWindow | spec\.window: end 2030-01-01T00:00:00Z is not after start 2030-01-02T00:00:00Z | $NONE | -
window-closed | | | window: {start: '2020-01-01T00:00:00+08:00', end: '2020-01-01T06:00:00+08:00'} | Failed | Validate | WindowClosed | maintenance window ended at 2020-01-01T06:00:00\+08:00 before the upgrade could start: agree a new window | $NONE | -
no-hotfix-confirmation | | | confirmations: {endpointHotfixApplied: false, clientAutoUpdateDisabled: true, xinghaiReady: true} | Blocked | Preflight | ConfirmationMissing | must check and confirm: spec\.confirmations\.endpointHotfixApplied \([^;]*10\.3\.0\.2050[^;]*\); set each to true | $NONE | -
no-autoupdate-confirmation | | | confirmations: {endpointHotfixApplied: true, clientAutoUpdateDisabled: false, xinghaiReady: true} | Blocked | Preflight | ConfirmationMissing | must check and confirm: spec\.confirmations\.clientAutoUpdateDisabled \([^;]*Update management[^;]*\); set each to true | $NONE | -
no-xinghai-confirmation | | | confirmations: {endpointHotfixApplied: true, clientAutoUpdateDisabled: true, xinghaiReady: false} | Blocked | Preflight | ConfirmationMissing | must check and confirm: spec\.confirmations\.xinghaiReady \([^;]*ttl_only_drop_parts[^;]*\); set each to true | $NONE | -
old-package-missing | | rm -rf "$OLD_DIR" | | Blocked | Preflight | PackageMissing | the installed release's package .*/cli/10\.6\.0\.2600 is missing \(spec\.packages\.root/spec\.fromVersion\) | $NONE | -
new-folder-missing | | rm -rf "$NEW_DIR" | | Blocked | Preflight | PackageMissing | the new release's folder .*/cli/10\.7\.0\.2800 is missing: create it, copy the release package | $NONE | -
new-update-sh-missing | | rm -f "$UPDATE_SH" | | Blocked | Preflight | PackageMissing | /plan_client/update\.sh is missing: extract the release package in .*/cli/10\.7\.0\.2800, or name its tarball in spec\.packages\.archive | nostate,nobackup,nopaas,norun,sabre,cdn | -
archive-missing | --archive | | packages: {root: $PACKAGES_ROOT, archive: nosuch.tar.gz} | Blocked | Preflight | PackageMissing | has no update\.sh and the archive .*/cli/10\.7\.0\.2800/nosuch\.tar\.gz \(spec\.packages\.archive\) is not there | $NONE | -
archive-corrupt | --archive | head -c 1000 /dev/urandom > "$ARCHIVE" | packages: {root: $PACKAGES_ROOT, archive: tianqing-10.7.0.2800.tar.gz} | Blocked | Preflight | PackageExtractFailed | tar -xf .*/tianqing-10\.7\.0\.2800\.tar\.gz -C .*/cli/10\.7\.0\.2800/\.tqu-extract-[0-9-]* failed | nobackup,nopaas,norun,sabre,cdn,pristine | -
template-none | --templates none | | | Blocked | Preflight | TemplateNotFound | no darwin template in .*/plan_client \(neither darwin_update_template_<timestamp>\.yaml nor darwin_template_<deployID>\.yaml\) | $NONE | -
template-ambiguous | --templates ambiguous | | | Blocked | Preflight | TemplateAmbiguous | ambiguous: 2 install templates in .*darwin_template_26285abe2200902d\.yaml.*darwin_template_7f3c0a9e11d2b864\.yaml.*set spec\.template | $NONE | -
template-explicit-missing | | | template: $TEMPLATE_DIR/darwin_update_template_20991231000000.yaml | Blocked | Preflight | TemplateNotFound | spec\.template .*/darwin_update_template_20991231000000\.yaml: No such file or directory | $NONE | -
disk-usage | | | disk: {dataRoot: $QAXDATA, mongoDataDir: $MONGO_DATA_DIR, reserveGiB: 70, maxUsagePercent: 1} | Blocked | Preflight | DiskUsageTooHigh | GiB used \+ 70 GiB reserve = [0-9.]+% of [0-9.]+ GiB, over the 1% limit .*free at least [0-9.]+ GiB | $NONE | -
mongo-too-big | --mongo-size 4T | | | Blocked | Preflight | InsufficientBackupSpace | the data backup needs room for the MongoDB data: .*/mongo/data holds 409[0-9.]+ GiB but .* has only [0-9.]+ GiB available | $NONE | -
secret-missing | | kubectl -n "$ns" delete secret tianqing-ssh | | Blocked | Preflight | SshSecretNotFound | Secret tqu-b-secret-missing/tianqing-ssh \(spec\.ssh\.passwordSecretRef\) not found: kubectl -n tqu-b-secret-missing create secret generic tianqing-ssh | $NONE | -
secret-without-key | | kubectl -n "$ns" delete secret tianqing-ssh && kubectl -n "$ns" create secret generic tianqing-ssh --from-literal=pass=x | | Blocked | Preflight | SshSecretKeyMissing | Secret tqu-b-secret-without-key/tianqing-ssh has no non-empty key .password. \(spec\.ssh\.passwordSecretRef\.key\) | $NONE | -
paas-edr-with-edr | --scenario paas_check=edr | | edrEnabled: true | Blocked | PaasCheck | PaasCheckFailed | es, flink, sabre failed the PaaS check and the EDR module is used \(spec\.edrEnabled\): repair them first | $CHECKED | -
paas-other | --scenario paas_check=other | | | Blocked | PaasCheck | PaasCheckFailed | PaaS components failed: mongodb; repair them before upgrading | $CHECKED | -
paas-mixed | --scenario paas_check=mixed | | | Blocked | PaasCheck | PaasCheckFailed | PaaS components failed: [a-z, ]*(es, mongodb)[a-z, ]*; repair them | $CHECKED | -
paas-unknown | --scenario paas_check=unknown | | | Blocked | PaasCheck | PaasCheckUnknownFailure | darwin-client paas_check exited with 1 and named no component .*read .*paas_check\.log | $CHECKED | -
paas-exit-silent | --scenario paas_check=exit | | | Blocked | PaasCheck | PaasCheckUnknownFailure | darwin-client paas_check exited with 2 and named no component | $CHECKED | -
paas-timeout | --scenario paas_delay=30 | | timeouts: {paasCheck: 2s} | Blocked | PaasCheck | PaasCheckTimedOut | did not finish within 2 s \(spec\.timeouts\.paasCheck\) | $CHECKED | -
paas-edr-without-edr | --scenario paas_check=edr | | | Succeeded | - | UpgradeSucceeded | the upgrade is complete | backup,ran1,nosabre,tuned | check_edr_edit
window-not-open | | | initialVersion: 10.5.0.3000 ;; window: {start: '$WIN_FUTURE_START', end: '$WIN_FUTURE_END'} | Waiting | Upgrade | WaitingForWindow | waiting for the maintenance window opening at $WIN_FUTURE_START | $CHECKED | check_another_active
update-fails | --scenario update=fail | | | Failed | Upgrade | UpgradeFailed | update\.sh exited with 1 after [0-9]+ s; last lines of install_saas\.log: .*skylar-apiserver 失败.*upgrade failed | backup,ran1,nosabre,cdn | check_no_finalizer
update-exit-3 | --scenario update=fail --scenario update_exit_code=3 | | | Failed | Upgrade | UpgradeFailed | update\.sh exited with 3 after | backup,ran1,nosabre,cdn | -
root-outside | | outside_packages $name | packages: {root: $outside/$name/cli} | Failed | Validate | PathNotAllowed | spec\.packages\.root .$outside/$name/cli. is outside the allowed roots \($tmp, /qaxdata\)$ | $NONE | check_no_marker
old-folder-symlink-outside | | outside_packages $name && rm -rf "$OLD_DIR" && ln -s "$outside/$name/cli/${OLD_DIR##*/}" "$OLD_DIR" | | Failed | Validate | PathNotAllowed | spec\.packages\.root/spec\.fromVersion .$OLD_DIR. resolves to .$outside/$name/cli/10\.6\.0\.2600. \(symbolic links followed\), outside the allowed roots | $NONE | check_no_marker
cache-host-root | | cdn_generation | cdn: {cacheHostPath: /} | Failed | Validate | PathNotAllowed | spec\.cdn\.cacheHostPath ./. is outside the allowed roots \($tmp, /qaxdata\) | $NONE | check_cdn_unchanged
cache-allowed-root-itself | | cdn_generation | cdn: {cacheHostPath: /qaxdata} | Failed | Validate | PathNotAllowed | spec\.cdn\.cacheHostPath ./qaxdata. is an allowed root itself: a hostPath mounted into pods must be a sub-folder of one | $NONE | check_cdn_unchanged
root-symlink-inside | | mv "$PACKAGES_ROOT" "$PACKAGES_ROOT.real" && ln -s "$PACKAGES_ROOT.real" "$PACKAGES_ROOT" | | Succeeded | - | UpgradeSucceeded | the upgrade is complete | backup,ran1,nosabre,tuned | -
EOF
)

# --------------------------------------------------- extra checks per case

check_no_finalizer() {
  e2e_eq "$1: the finalizer is gone once update.sh has ended" "" \
    "$(kubectl -n "$2" get tqu "$3" -o jsonpath='{.metadata.finalizers}')"
}

check_hung_gone() {  # the hung update.sh and everything it started are gone
  local label=$1 pidf child sup left
  check_no_finalizer "$@"
  pidf=$(find "$UP_DIR/backups" -path '*/upgrade-g*/pid' | head -n1)
  child=$(jq -r .childPid "$pidf" 2>/dev/null)
  sup=$(jq -r .supervisorPid "$pidf" 2>/dev/null)
  e2e_match "$label: the supervisor recorded update.sh's pid" '^[0-9]+ [0-9]+$' "$child $sup"
  left=$(pgrep -g "$child" 2>/dev/null; kill -0 "$child" 2>/dev/null && echo "$child"; kill -0 "$sup" 2>/dev/null && echo "$sup")
  e2e_eq "$label: the hung update.sh (its whole process group) and its supervisor are gone" "" "$left"
}

check_edr_edit() {  # update.sh edited once, the runbook's way; original kept
  local label=$1 ns=$2 name=$3 orig
  e2e_eq "$label: the command line of update.sh has --paas.check=false exactly once" 1 \
    "$(grep -v '^[[:space:]]*#' "$UPDATE_SH" | grep -o -- '--paas.check=false' | wc -l)"
  e2e_match "$label: ... right after execute.type=k8s" '--execute\.type=k8s --paas\.check=false ' \
    "$(grep -v '^[[:space:]]*#' "$UPDATE_SH")"
  orig=$(find "$UP_DIR/backups" -name 'update.sh.orig' | head -n1)
  e2e_check "$label: the original update.sh is kept in the state folder" test -s "$orig"
  e2e_eq "$label: the edit is exactly the runbook's sed on the original" "" \
    "$(diff <(sed 's/execute\.type=k8s/& --paas.check=false/' "$orig") "$UPDATE_SH")"
  e2e_match "$label: PaasCheck says what it did" 'PaasCheckEdrOnly|only es, flink, sabre failed and EDR is off.*inserted --paas\.check=false' \
    "$(kubectl -n "$ns" get tqu "$name" -o json | jq -r '.status.steps[] | select(.name=="PaasCheck") | .message')"
  e2e_match "$label: the install update.sh ran got --paas.check=false" '--paas\.check=false' \
    "$(grep -L -- '--actions=paas_check' "$TQU_FAKE_RECORD"/darwin-client.*.argv | xargs cat)"
}

# Nothing of a refused folder ran.
check_no_marker() {
  e2e_eq "$1: nothing in the refused folder ran (no marker)" "" "$(cat "$outside/$3/marker" 2>/dev/null)"
}

# The cdn Deployment as the vendor left it: not patched at all (its
# generation as cdn_generation saved it in the case's setup).
cdn_generation() { kubectl -n default get deploy darwin-cdn -o jsonpath='{.metadata.generation}' > "$UP_DIR/cdn.generation"; }
check_cdn_unchanged() {
  e2e_eq "$1: darwin-cdn never patched (same generation, no cache volume)" "$(cat "$UP_DIR/cdn.generation") 0" \
    "$(kubectl -n default get deploy darwin-cdn -o json |
       jq -r '"\(.metadata.generation) \([.spec.template.spec.volumes[]? | select(.name=="darwin-cdn-data")] | length)"')"
}

# A second upgrade while the first (this case) waits for its window.
check_another_active() {
  local label=$1 ns=$2 name=$3 ns2=tqu-b-another uid2
  up_secret "$ns2"
  up_apply "$ns2" second "  initialVersion: 10.5.0.3000"
  if e2e_eventually 20 up_at_state "$ns2" second "Blocked AnotherUpgradeActive"; then
    e2e_ok "$label: a second upgrade is Blocked AnotherUpgradeActive"
  else
    e2e_not_ok "$label: a second upgrade is Blocked AnotherUpgradeActive" "state: $(up_state_of "$ns2" second)"
  fi
  e2e_match "$label: its message names the active one" \
    "another upgrade is in progress \\(${ns}/${name}[,)].*this one starts when it has finished" \
    "$(up_cond "$ns2" second Stalled message)"
  e2e_eq "$label: ... Stalled=True" True "$(up_cond "$ns2" second Stalled status)"
  # the slot is taken by the first step that changes something: the
  # checks (and the backup, into its own folder) ran, the PaaS check not
  e2e_check "$label: ... its checks ran, nothing from PaasCheck on" steps_shape "$ns2" second PaasCheck Pending
  e2e_eq "$label: ... update.sh still never ran" 0 "$(up_update_calls)"
  # the first one deleted: the second starts and completes
  kubectl -n "$ns" delete tqu "$name" --wait=true --timeout=60s >/dev/null
  if e2e_eventually 60 up_at_state "$ns2" second "Succeeded UpgradeSucceeded"; then
    e2e_ok "$label: once the first is deleted the second runs to Succeeded"
  else
    e2e_not_ok "$label: once the first is deleted the second runs to Succeeded" \
      "state: $(up_state_of "$ns2" second)" "$(up_steps_text "$ns2" second)"
  fi
  e2e_eq "$label: ... update.sh ran once (for the second)" 1 "$(up_update_calls)"
  kubectl -n "$ns2" delete tqu second --wait=true --timeout=60s >/dev/null
}

# ---------------------------------------------------------------- runner

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }

# jq over the resource fetched once per case ($json)
jcond() {  # jcond TYPE FIELD
  jq -r --arg t "$1" --arg f "$2" \
    '[.status.conditions[]? | select(.type==$t) | .[$f]][0] // "" | gsub("\n"; " / ")' <<<"$json"
}

declare -a SUMMARY=()
run_case() {
  local name=$1 opts=$2 setup=$3 spec=$4 phase=$5 step=$6 reason=$7 regex=$8 effects=$9 extra=${10}
  local ns=tqu-b-$name out msg state stalled json t0
  local -a optv=()
  t0=$(date +%s)

  up_reset_cluster
  eval "optv=($opts)"
  if ! up_case_tree "$tmp" "$name" "${optv[@]}"; then e2e_not_ok "$name: fake tree"; return; fi
  up_secret "$ns"
  if [ -n "$setup" ] && ! out=$(eval "$setup" 2>&1); then e2e_not_ok "$name: setup" "$out"; return; fi
  eval "spec=\"$spec\""
  eval "regex=\"$regex\""
  eval "effects=\"$effects\""
  [ -z "$spec" ] || spec="  ${spec// ;; /$'\n'  }"

  if ! out=$(up_apply "$ns" "$name" "$spec" 2>&1); then
    # refused at admission: acceptable for a malformed spec, if it says why
    e2e_match "$name: refused at admission with the reason" "$regex|window" "$out"
    SUMMARY+=("$name | refused at admission | $out")
    return
  fi
  if e2e_eventually 60 up_at_state "$ns" "$name" "$phase $reason"; then
    e2e_ok "$name: phase $phase, reason $reason"
  else
    e2e_not_ok "$name: phase $phase, reason $reason" "state: $(up_state_of "$ns" "$name")" \
      "message: $(kubectl -n "$ns" get tqu "$name" -o jsonpath='{.status.message}')"
  fi
  json=$(kubectl -n "$ns" get tqu "$name" -o json)
  stalled=$(jcond Stalled status)
  if [ "$phase" = Blocked ] || [ "$phase" = Failed ]; then
    msg=$(jcond Stalled message)
    e2e_eq "$name: Stalled=True (a person must act), Ready=False, Reconciling=False" "True False False" \
      "$stalled $(jcond Ready status) $(jcond Reconciling status)"
    e2e_check "$name: kubectl wait --for=condition=Stalled" \
      kubectl -n "$ns" wait --for=condition=Stalled "tqu/$name" --timeout=10s
    if e2e_eventually 5 bash -c "kubectl -n $ns get events -o json | jq -e '.items[] | select(.type==\"Warning\" and .reason==\"$reason\" and .involvedObject.name==\"$name\")' >/dev/null"; then
      e2e_ok "$name: a Warning Event $reason"
    else
      e2e_not_ok "$name: a Warning Event $reason" "$(kubectl -n "$ns" get events 2>&1)"
    fi
  else
    msg=$(jcond Ready message)
    e2e_eq "$name: Stalled=False (nobody needs to act)" False "$stalled"
    if [ "$phase" = Waiting ]; then
      e2e_check_fails "$name: kubectl wait --for=condition=Stalled times out" \
        kubectl -n "$ns" wait --for=condition=Stalled "tqu/$name" --timeout=2s
      e2e_eq "$name: Reconciling=True" True "$(jcond Reconciling status)"
      e2e_match "$name: a Normal Event $reason" "Normal +$reason" "$(kubectl -n "$ns" get events)"
      # re-checks of a waiting step do not count as new attempts
      e2e_eq "$name: $step attempted once" 1 \
        "$(kubectl -n "$ns" get tqu "$name" -o json | jq --arg s "$step" '.status.steps[] | select(.name==$s) | .attempts')"
    fi
  fi
  e2e_match "$name: the message says why" "$regex" "$msg"
  [ "$step" = - ] || e2e_match "$name: status.message is the step's message" "^$step: " \
    "$(jq -r .status.message <<<"$json")"
  case $phase in Blocked) state=Blocked ;; Failed) state=Failed ;; *) state=Pending ;; esac
  local shape="steps before $step done, $step $state, later ones Pending"
  [ "$step" != - ] || shape="every step Succeeded or Skipped"
  if steps_shape "$ns" "$name" "$step" "$state"; then
    e2e_ok "$name: $shape"
  else
    e2e_not_ok "$name: $shape" "$(up_steps_text "$ns" "$name")"
  fi
  check_effects "$name" "$ns" "$name" "$effects"
  SUMMARY+=("$name | $(up_state_of "$ns" "$name") | $msg")
  [ "$extra" = - ] || "$extra" "$name" "$ns" "$name"
  kubectl -n "$ns" delete tqu "$name" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 ||
    e2e_not_ok "$name: deleted"
  echo "# $name: $(( $(date +%s) - t0 )) s"
}

# ------------------------------------------------------------------- run

UP_DIR=$tmp
kubectl apply -f "$FIX/cluster-objects.yaml" >/dev/null
"$FIX/set-rollout.sh" --all >/dev/null
up_kubelet_start
up_controller ctl || { e2e_not_ok "controller started" "$(tail -n 20 "$tmp/ctl.log")"; e2e_summary; exit 1; }

ncases=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  IFS='|' read -r -a f <<<"$line"
  for i in "${!f[@]}"; do f[i]=$(trim "${f[i]}"); done
  # TQU_CASES=REGEX: only the matching cases (and no idle check), for debugging
  [ -z "${TQU_CASES:-}" ] || [[ ${f[0]} =~ $TQU_CASES ]] || continue
  run_case "${f[@]}"
  ncases=$((ncases + 1))
done <<<"$TABLE"
[ -n "${TQU_CASES:-}" ] ||
  e2e_eq "the table has at least 20 cases" yes "$([ "$ncases" -ge 20 ] && echo yes || echo "no: $ncases")"

# ------------------------------------- left alone for 70 s: no writes at all
# X is Blocked in CdnTuning (its cdn Deployment does not exist) and, past
# its PaaS check and update.sh, holds the slot; Y waits behind it
# (AnotherUpgradeActive). The controller re-checks both every minute.
audit_writes() {  # every write to an object in namespace $1, one line each
  jq -c --arg ns "$1" 'select(.objectRef.namespace==$ns and
        (.verb=="create" or .verb=="update" or .verb=="patch" or .verb=="delete"))
        | [.verb, .objectRef.resource, .objectRef.subresource // "", .objectRef.name, .user.username]' \
    "$TQU_AUDIT_LOG" 2>/dev/null
}
reconciles() { grep '"msg":"reconciled"' "$tmp/ctl.log" | grep -c "\"key\":\"$1\""; }
rv() { kubectl -n "$1" get tqu "$2" -o jsonpath='{.metadata.resourceVersion}'; }
if [ -z "${TQU_CASES:-}" ]; then
  up_reset_cluster
  up_case_tree "$tmp" idle
  nsx=tqu-b-idle-blocked nsy=tqu-b-idle-waiting x=idle-x y=idle-y
  up_secret "$nsx"
  up_secret "$nsy"
  up_apply "$nsx" "$x" "  cdn: {deployment: no-such-cdn}"
  if e2e_eventually 60 up_at_state "$nsx" "$x" "Blocked CdnDeploymentNotFound"; then
    e2e_ok "idle: X Blocked CdnDeploymentNotFound"
  else
    e2e_not_ok "idle: X Blocked CdnDeploymentNotFound" "$(up_state_of "$nsx" "$x")"
  fi
  up_apply "$nsy" "$y"
  if e2e_eventually 30 up_at_state "$nsy" "$y" "Blocked AnotherUpgradeActive"; then
    e2e_ok "idle: Y Blocked AnotherUpgradeActive (a Blocked one holds the slot)"
  else
    e2e_not_ok "idle: Y Blocked AnotherUpgradeActive (a Blocked one holds the slot)" "$(up_state_of "$nsy" "$y")"
  fi
  e2e_match "idle: Y's message names X" "another upgrade is in progress \\($nsx/$x" \
    "$(kubectl -n "$nsy" get tqu "$y" -o jsonpath='{.status.message}')"
  sleep 2   # let the last Event writes land
  rvx=$(rv "$nsx" "$x") rvy=$(rv "$nsy" "$y")
  ax=$(audit_writes "$nsx" | wc -l) ay=$(audit_writes "$nsy" | wc -l)
  rx=$(reconciles "$nsx/$x") ry=$(reconciles "$nsy/$y")
  echo "# idle: left alone for 70 s"
  sleep 70
  e2e_check "idle: the controller re-checked X during the 70 s" test "$(reconciles "$nsx/$x")" -gt "$rx"
  e2e_check "idle: the controller re-checked Y during the 70 s" test "$(reconciles "$nsy/$y")" -gt "$ry"
  e2e_eq "idle: X's resourceVersion unchanged" "$rvx" "$(rv "$nsx" "$x")"
  e2e_eq "idle: Y's resourceVersion unchanged" "$rvy" "$(rv "$nsy" "$y")"
  e2e_eq "idle: no API write in X's namespace (status, Events), per the audit log" "" \
    "$(audit_writes "$nsx" | tail -n +$((ax + 1)))"
  e2e_eq "idle: no API write in Y's namespace (status, Events), per the audit log" "" \
    "$(audit_writes "$nsy" | tail -n +$((ay + 1)))"
  e2e_eq "idle: X still Blocked CdnDeploymentNotFound" "Blocked CdnDeploymentNotFound" "$(up_state_of "$nsx" "$x")"
  # X deleted: Y, waiting behind it, goes ahead
  kubectl -n "$nsx" delete tqu "$x" --wait=true --timeout=60s >/dev/null
  if e2e_eventually 60 up_at_state "$nsy" "$y" "Succeeded UpgradeSucceeded"; then
    e2e_ok "idle: X deleted, Y runs to Succeeded"
  else
    e2e_not_ok "idle: X deleted, Y runs to Succeeded" "$(up_state_of "$nsy" "$y")" "$(up_steps_text "$nsy" "$y")"
  fi
  kubectl -n "$nsy" delete tqu "$y" --wait=true --timeout=60s >/dev/null
fi

e2e_check_fails "no sanitizer report in the controller log" grep -E 'AddressSanitizer|runtime error:' "$tmp/ctl.log"
up_stop ctl

echo "# cases (name | phase reason | message):"
for s in "${SUMMARY[@]}"; do echo "#   $s"; done
echo "# run time: $(( $(date +%s) - T0 )) s"
e2e_summary
exit $?
