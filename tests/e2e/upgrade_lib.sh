# shellcheck shell=bash
# Helpers for the end-to-end upgrade scenarios (source after lib.sh).
#
#   up_world DIR [make-qaxdata options]   fake /qaxdata tree in DIR/qax, the
#                                         simulated Tianqing cluster, rolled out
#   up_secret NS [PASSWORD]               namespace NS with the SSH Secret
#   up_controller NAME [flags...]         start the controller (log: $UP_DIR/NAME.log);
#                                         sets UP_PID_<NAME>; unless the flags have an
#                                         --allowed-root, it gets $UP_DIR and /qaxdata
#   up_stop NAME [SIGNAL]                 stop it (default TERM) and wait
#   up_kubelet_start / up_kubelet_stop    a stand-in kubelet: every Deployment whose
#                                         generation is not yet observed is marked
#                                         rolled out (no kubelet runs in the tests)
#   up_apply NS NAME [yq-style overrides as extra YAML lines under spec:]
#   up_phase NS NAME / up_reason NS NAME  status.phase / the Stalled or Ready reason
#   up_cleanup                            stop everything started here
#
# For scripts that run many cases, each in a tree of its own under one
# temporary folder TMP:
#   up_case_tree TMP NAME [make-qaxdata options]   fresh tree TMP/c/NAME/qax;
#                                         sets UP_DIR and tree.env's variables
#   up_kill_vendor_leftovers TMP          kill the vendor processes those trees'
#                                         supervisors recorded (if still in TMP)
#   up_sabre_present / up_sabre_gone / up_cdn_untouched / up_cdn_tuned
#   up_reset_cluster                      the simulated cluster as the vendor left it
#   up_state_of NS NAME                   "<phase> <reason>"; up_at_state NS NAME STATE
#   up_cond NS NAME TYPE FIELD            one field of a condition, on one line
#   up_steps_text NS NAME                 "Validate=Succeeded Preflight=Running ..."
#   up_check_state SECONDS NS NAME STATE DESC   a check: up_at_state within SECONDS
#   up_cleanup_cases TMP                  up_cleanup, vendor leftovers, rm -rf TMP
#   up_update_calls / up_paas_calls       how often the fake vendor tools ran

UP_DIR=${UP_DIR:-}
UP_PASSWORD=${UP_PASSWORD:-'Tq-s3cr3t pass;$(x)'}
declare -A UP_PIDS=()
UP_KUBELET_PID=

up_world() {
  local dir=$1
  shift
  UP_DIR=$dir
  mkdir -p "$dir"
  "$TQU_REPO/tests/fixtures/make-qaxdata.sh" "$dir/qax" "$@" >/dev/null || return 1
  # shellcheck disable=SC1091
  source "$dir/qax/fake/tree.env"
  kubectl apply -f "$TQU_REPO/tests/fixtures/cluster-objects.yaml" >/dev/null || return 1
  "$TQU_REPO/tests/fixtures/set-rollout.sh" --all >/dev/null
}

up_secret() {
  local ns=$1 pw=${2:-$UP_PASSWORD}
  kubectl create namespace "$ns" >/dev/null 2>&1 || true
  kubectl -n "$ns" delete secret tianqing-ssh >/dev/null 2>&1 || true
  kubectl -n "$ns" create secret generic tianqing-ssh --from-literal=password="$pw" >/dev/null
}

up_controller() {
  local name=$1 roots=()
  shift
  # folders are confined: the fake trees below $UP_DIR, and /qaxdata for the
  # default spec.cdn.cacheHostPath (only a string in the simulated cluster)
  case " $* " in *" --allowed-root"*) ;; *) roots=(--allowed-root "$UP_DIR" --allowed-root /qaxdata) ;; esac
  "$TQU_BIN" --kubeconfig "${UP_KUBECONFIG:-$TQU_KUBECONFIG_ADMIN}" --health-addr 127.0.0.1:0 \
    --log-format json --log-level debug "${roots[@]}" "$@" >>"$UP_DIR/$name.log" 2>&1 &
  UP_PIDS[$name]=$!
  e2e_eventually 20 grep -q '"msg":"controller started"' "$UP_DIR/$name.log"
}

up_pid() { echo "${UP_PIDS[$1]}"; }

up_stop() {
  local name=$1 sig=${2:-TERM} pid=${UP_PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill -"$sig" "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "UP_PIDS[$name]"
}

up_kubelet_start() {
  (
    trap 'exit 0' TERM
    while :; do
      kubectl get deployments -A -o json 2>/dev/null |
        jq -r '.items[] | select((.status.observedGeneration // 0) != .metadata.generation)
               | "\(.metadata.namespace) \(.metadata.name)"' 2>/dev/null |
        while read -r ns name; do
          "$TQU_REPO/tests/fixtures/set-rollout.sh" "$ns" "$name" >/dev/null 2>&1
        done
      sleep 0.5
    done
  ) &
  UP_KUBELET_PID=$!
}

up_kubelet_stop() {
  [ -n "$UP_KUBELET_PID" ] || return 0
  kill "$UP_KUBELET_PID" 2>/dev/null
  wait "$UP_KUBELET_PID" 2>/dev/null
  UP_KUBELET_PID=
}

# up_apply NS NAME [EXTRA-SPEC-YAML]: a TianqingUpgrade on the fake tree;
# EXTRA lines (indented 2 spaces, under spec:) override or add fields.
up_apply() {
  local ns=$1 name=$2 extra=${3:-}
  kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingUpgrade
metadata: {name: $name, namespace: $ns}
spec:
  fromVersion: ${UP_FROM:-10.6.0.2600}
  initialVersion: ${UP_INITIAL:-10.3.0.4200}
  toVersion: ${UP_TO:-10.7.0.2800}
  machines: 6
  packages: {root: $PACKAGES_ROOT}
  ssh: {passwordSecretRef: {name: tianqing-ssh, key: password}}
  dataBackup: {dir: $QAXDATA}
  backupDir: $UP_DIR/backups
  disk: {dataRoot: $QAXDATA, mongoDataDir: $MONGO_DATA_DIR, reserveGiB: 0, maxUsagePercent: 100}
  confirmations: {endpointHotfixApplied: true, clientAutoUpdateDisabled: true, xinghaiReady: true}
$extra
EOF
}

up_phase() { kubectl -n "$1" get tqu "$2" -o jsonpath='{.status.phase}' 2>/dev/null; }
up_reason() {
  kubectl -n "$1" get tqu "$2" -o json 2>/dev/null |
    jq -r '[.status.conditions[]? | select(.type=="Stalled" and .status=="True") | .reason][0]
           // [.status.conditions[]? | select(.type=="Ready") | .reason][0] // ""'
}

up_cleanup() {
  local n
  up_kubelet_stop
  for n in "${!UP_PIDS[@]}"; do up_stop "$n" KILL; done
  # vendor processes left detached by a killed controller
  pkill -f "$UP_DIR/qax/cli" 2>/dev/null || true
}

# ------------------------------------------------ many cases in one folder

up_case_tree() {
  local tmp=$1 name=$2
  shift 2
  UP_DIR=$tmp/c/$name
  mkdir -p "$UP_DIR"
  "$TQU_REPO/tests/fixtures/make-qaxdata.sh" "$UP_DIR/qax" --scenario update_seconds=1 "$@" \
    >/dev/null || return 1
  # shellcheck disable=SC1091
  source "$UP_DIR/qax/fake/tree.env"
}

# By the pids the controller's supervisor recorded, and only if they still
# run in TMP (a pid may have been reused).
up_kill_vendor_leftovers() {
  local tmp=$1 f p
  for f in "$tmp"/c/*/backups/*/upgrade-g*/pid; do
    [ -f "$f" ] || continue
    for p in $(jq -r '.childPid, .supervisorPid' "$f" 2>/dev/null); do
      case $(readlink "/proc/$p/cwd" 2>/dev/null) in
      "$tmp"/*) kill -KILL -- "-$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null ;;
      esac
    done
  done
}

up_sabre_present() {
  kubectl -n default-sabre-server get deploy sabre-server >/dev/null 2>&1 &&
    kubectl -n default-sabre-server get svc sabre-server-service >/dev/null 2>&1
}
up_sabre_gone() {
  ! kubectl -n default-sabre-server get deploy sabre-server >/dev/null 2>&1 &&
    ! kubectl -n default-sabre-server get svc sabre-server-service >/dev/null 2>&1
}
up_cdn_untouched() {
  kubectl -n default get deploy darwin-cdn -o json | jq -e '
    ([.spec.template.spec.volumes[]? | select(.name=="darwin-cdn-data")] | length == 0) and
    (.spec.template.spec.affinity.podAntiAffinity == null)' >/dev/null
}
up_cdn_tuned() {
  kubectl -n default get deploy darwin-cdn -o json | jq -e '
    ([.spec.template.spec.volumes[]? | select(.name=="darwin-cdn-data")] | length == 1) and
    (.spec.template.spec.affinity.podAntiAffinity != null)' >/dev/null
}
# The stand-in kubelet rolls out what is re-created.
up_reset_cluster() {
  up_sabre_present || kubectl apply -f "$TQU_REPO/tests/fixtures/cluster-objects.yaml" >/dev/null 2>&1
  up_cdn_untouched || kubectl replace -f "$TQU_REPO/tests/fixtures/darwin-cdn-untuned.yaml" >/dev/null
}

# "<phase> <reason>": the Stalled condition's reason when it is True, else Ready's.
up_state_of() { echo "$(up_phase "$1" "$2") $(up_reason "$1" "$2")"; }
up_at_state() { [ "$(up_state_of "$1" "$2")" = "$3" ]; }
up_cond() {  # up_cond NS NAME TYPE FIELD
  kubectl -n "$1" get tqu "$2" -o json | jq -r --arg t "$3" --arg f "$4" \
    '[.status.conditions[]? | select(.type==$t) | .[$f]][0] // "" | gsub("\n"; " / ")'
}
up_update_calls() { cat "$TQU_FAKE_RECORD/update.sh.calls" 2>/dev/null || echo 0; }
up_paas_calls() { grep -l -- '--actions=paas_check' "$TQU_FAKE_RECORD"/darwin-client.*.argv 2>/dev/null | wc -l; }
up_steps_text() {
  kubectl -n "$1" get tqu "$2" -o json | jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")'
}
up_check_state() {  # up_check_state SECONDS NS NAME "PHASE REASON" DESC
  if e2e_eventually "$1" up_at_state "$2" "$3" "$4"; then e2e_ok "$5"
  else e2e_not_ok "$5" "state: $(up_state_of "$2" "$3")" "$(up_steps_text "$2" "$3")" \
    "message: $(kubectl -n "$2" get tqu "$3" -o jsonpath='{.status.message}')"; fi
}
up_cleanup_cases() {
  local n
  up_kubelet_stop
  for n in "${!UP_PIDS[@]}"; do up_stop "$n" KILL; done
  up_kill_vendor_leftovers "$1"
  rm -rf "$1"
}
