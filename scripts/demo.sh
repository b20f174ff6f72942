#!/usr/bin/env bash
# make demo: a whole Tianqing upgrade on a local control plane, with fake
# vendor tools, shown the way an operator follows it. Never touches a real
# /qaxdata: everything lives in a temporary folder that is removed at the
# end, and every process it started is stopped.
#
#   scripts/demo.sh              (run by `make demo` after building)
#   TQU_DEMO_UPGRADE_SECONDS=20  a shorter fake update.sh (default 60)
#
# Outside the harness it re-runs itself under tests/cluster/with-cluster.sh,
# which starts etcd and kube-apiserver and tears them down on every exit.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ -z "${TQU_CLUSTER_DIR:-}" ]; then
  exec tests/cluster/with-cluster.sh "$0" "$@"
fi

BIN=${TQU_BIN:-$repo/build/tianqing-upgrade-controller}
secs=${TQU_DEMO_UPGRADE_SECONDS:-60}
ns=tianqing-upgrade
work=$(mktemp -d /tmp/tqu-demo.XXXXXX)
ctl_pid='' watch_pid='' kubelet_pid=''

bold=$(tput bold 2>/dev/null || true) off=$(tput sgr0 2>/dev/null || true)
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; "$@"; }

cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
  [ -n "$kubelet_pid" ] && kill "$kubelet_pid" 2>/dev/null
  [ -n "$ctl_pid" ] && { kill -TERM "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null; }
  pkill -f "$work/qax/cli" 2>/dev/null || true
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "A local Kubernetes control plane is up (etcd + kube-apiserver $(kubectl version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)), with the TianqingUpgrade, TianqingTuning and TianqingRestore CRDs:"
show kubectl get crd tianqingupgrades.upgrade.tianqing.io tianqingtunings.upgrade.tianqing.io tianqingrestores.upgrade.tianqing.io

say "A simulated Tianqing cluster: the old sabre in default-sabre-server, darwin-cdn (untuned) and some services."
kubectl apply -f tests/fixtures/cluster-objects.yaml >/dev/null
tests/fixtures/set-rollout.sh --all >/dev/null
show kubectl get deployments -A

say "A fake deploy machine in $work/qax (not /qaxdata): packages 10.6.0.2600 and 10.7.0.2800, darwin templates, MongoDB data; the fake update.sh takes ${secs} s."
tests/fixtures/make-qaxdata.sh "$work/qax" --scenario "update_seconds=$secs" >/dev/null
# shellcheck disable=SC1091
source "$work/qax/fake/tree.env"
find "$work/qax/cli" -maxdepth 1 -mindepth 1 | sed 's/^/    /'

say "The SSH password goes into a Secret (never into the resource):"
kubectl create namespace "$ns" >/dev/null
show kubectl -n "$ns" create secret generic tianqing-ssh --from-literal=password='demo-password'

# No kubelet runs here: this stand-in marks a Deployment rolled out once its
# new generation appears, as a real cluster would after the pods start.
(
  trap 'exit 0' TERM
  while :; do
    kubectl get deployments -A -o json 2>/dev/null |
      jq -r '.items[] | select((.status.observedGeneration // 0) != .metadata.generation)
             | "\(.metadata.namespace) \(.metadata.name)"' 2>/dev/null |
      while read -r dns dname; do tests/fixtures/set-rollout.sh "$dns" "$dname" >/dev/null 2>&1; done
    sleep 1
  done
) &
kubelet_pid=$!

say "Starting the controller (its log: $work/controller.log):"
echo "    $BIN --kubeconfig \$KUBECONFIG --health-addr 127.0.0.1:0 --allowed-root $work --allowed-root /qaxdata"
"$BIN" --kubeconfig "$KUBECONFIG" --health-addr 127.0.0.1:0 --allowed-root "$work" --allowed-root /qaxdata \
  >"$work/controller.log" 2>&1 &
ctl_pid=$!
for _ in $(seq 1 50); do grep -q 'controller started' "$work/controller.log" && break; sleep 0.2; done
if ! kill -0 "$ctl_pid" 2>/dev/null; then
  echo "the controller did not start:"; cat "$work/controller.log"; exit 1
fi

say "The TianqingUpgrade the operator applies (manifests/samples/tianqingupgrade.yaml, paths pointed at the fake machine):"
cat > "$work/upgrade.yaml" <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingUpgrade
metadata:
  name: to-10.7.0.2800
  namespace: $ns
spec:
  fromVersion: 10.6.0.2600
  initialVersion: 10.3.0.4200        # below 10.5.0.3000: the old sabre is removed
  toVersion: 10.7.0.2800
  machines: 6
  packages: {root: $PACKAGES_ROOT}
  ssh: {user: root, port: 22, passwordSecretRef: {name: tianqing-ssh, key: password}}
  dataBackup: {enabled: true, dir: $QAXDATA}
  backupDir: $work/backups
  disk: {dataRoot: $QAXDATA, mongoDataDir: $MONGO_DATA_DIR, reserveGiB: 0, maxUsagePercent: 100}
  confirmations: {endpointHotfixApplied: true, clientAutoUpdateDisabled: true, xinghaiReady: true}
EOF
sed 's/^/    /' "$work/upgrade.yaml"
show kubectl apply -f "$work/upgrade.yaml"

say "Following it live (kubectl get tqu -o wide -w):"
kubectl -n "$ns" get tqu -o wide -w &
watch_pid=$!

if ! kubectl -n "$ns" wait --for=condition=Ready tqu/to-10.7.0.2800 --timeout=$((secs + 180))s >/dev/null; then
  kill "$watch_pid" 2>/dev/null; watch_pid=''
  say "The upgrade did not finish in time. Its state and the controller's log:"
  kubectl -n "$ns" describe tqu to-10.7.0.2800
  tail -n 30 "$work/controller.log"
  exit 1
fi
sleep 1
kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null; watch_pid=''

say "Done. kubectl describe shows every step and the Events:"
show kubectl -n "$ns" describe tqu to-10.7.0.2800

say "What changed in the cluster:"
show kubectl -n default-sabre-server get deployments,services
echo "    (the old sabre is gone; its manifests were saved first)"
kubectl -n default get deployment darwin-cdn -o json |
  jq -r '"    darwin-cdn volumes: \([.spec.template.spec.volumes[] | "\(.name) -> \(.hostPath.path) (\(.hostPath.type))"] | join(", "))",
         "    darwin-cdn anti-affinity: app in \(.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values) per \(.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey)"'

say "The controller's own backups:"
find "$work/backups" -type f | sort | sed 's/^/    /'

say "What a TianqingRestore would put back (a dry run, the default: the differences, nothing changed):"
kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingRestore
metadata: {name: undo-10.7.0.2800, namespace: $ns}
spec: {upgradeRef: {name: to-10.7.0.2800}}
EOF
kubectl -n "$ns" wait --for=condition=Ready tqr/undo-10.7.0.2800 --timeout=60s >/dev/null
show kubectl -n "$ns" get tqr -o wide
kubectl -n "$ns" get tqr undo-10.7.0.2800 -o json |
  jq -r '.status.plan[] | "    \(.action) \(.target)" + (if (.paths // []) != [] then ": " + (.paths | join(", ")) else "" end)'

say "The demo is over: stopping the controller, the control plane, and removing $work."
exit 0
