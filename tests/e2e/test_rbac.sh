#!/usr/bin/env bash
# Least privilege, proved on the real control plane:
#
#  1. `kubectl apply -k manifests/ --dry-run=server` is accepted and creates
#     nothing; the manifests have no wildcard, read Secrets by get only, by
#     name, in one namespace; the Deployment is what the design says.
#  2. The RBAC objects applied for real; the controller runs a whole upgrade
#     as the ServiceAccount tianqing-upgrade/tianqing-upgrade-controller (a
#     client certificate whose CN is the ServiceAccount's user name, which
#     the bindings' ServiceAccount subject matches), with --leader-elect:
#     Succeeded, no "forbidden" in its log, no 403 on /metrics, every write
#     it made allowed (audit log), the cdn drift watch working.
#  3. Requests outside the grant are refused for that identity, and what
#     the API server says it may do (SelfSubjectRulesReview, as `kubectl
#     auth can-i --list` shows it) is exactly what the manifests grant.
#
#   tests/cluster/with-cluster.sh tests/e2e/test_rbac.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=upgrade_lib.sh
. "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}" "${TQU_CLUSTER_SH:?}"
tmp=$(mktemp -d)
trap 'up_cleanup; rm -rf "$tmp"' EXIT

ns=tianqing-upgrade
sa=tianqing-upgrade-controller
user=system:serviceaccount:$ns:$sa
manifests=$TQU_REPO/manifests
name="rbac-to-2800"

# ------------------------------------------------------ 1. the manifests
# The shipped objects as one JSON List (what apply -k sends).
kubectl kustomize "$manifests" > "$tmp/all.yaml" 2>"$tmp/kustomize.err" &&
  kubectl create --dry-run=client -o json -f "$tmp/all.yaml" 2>>"$tmp/kustomize.err" |
  jq -s '{apiVersion: "v1", kind: "List", items: [.[] | if .kind == "List" then .items[] else . end]}' > "$tmp/all.json"
if [ -s "$tmp/all.json" ]; then e2e_ok "kubectl kustomize manifests/ builds"
else e2e_not_ok "kubectl kustomize manifests/ builds" "$(cat "$tmp/kustomize.err")"; e2e_summary; exit 1; fi
nobj=$(jq '.items | length' "$tmp/all.json")

# A server dry run of namespaced objects needs their namespace to exist (the
# dry run does not create it); every other object is checked as it is.
kubectl create namespace "$ns" >/dev/null 2>&1 || true
out=$(kubectl apply -k "$manifests" --dry-run=server 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$(grep -c ' (server dry run)$' <<<"$out")" = "$nobj" ]; then
  e2e_ok "kubectl apply -k manifests/ --dry-run=server accepts all $nobj objects"
else
  e2e_not_ok "kubectl apply -k manifests/ --dry-run=server accepts all $nobj objects" "exit $rc" "$out"
fi
e2e_check_fails "the dry run created nothing (no Deployment)" kubectl -n "$ns" get deploy "$sa"
e2e_check_fails "the dry run created nothing (no ClusterRole)" kubectl get clusterrole "$sa"

rbac='.items[] | select(.kind == "Role" or .kind == "ClusterRole")'
e2e_eq "no wildcard in any rule" "" \
  "$(jq -r "$rbac | .rules[] | (.apiGroups // []) + .resources + .verbs + (.resourceNames // []) | .[] | select(test(\"[*]\"))" "$tmp/all.json")"
e2e_eq "no nonResourceURLs, no escalate/bind/impersonate" "" \
  "$(jq -r "$rbac | .rules[] | select(.nonResourceURLs or (.verbs | any(. == \"escalate\" or . == \"bind\" or . == \"impersonate\"))) | tojson" "$tmp/all.json")"
e2e_eq "Secrets: one rule, get only, by name, in a Role of $ns" \
  "Role $ns [\"get\"] [\"tianqing-ssh\",\"tianqing-etcd-tls\"]" \
  "$(jq -r "$rbac | .kind as \$k | (.metadata.namespace // \"-\") as \$n | .rules[] | select(any(.resources[]; . == \"secrets\")) | \"\(\$k) \(\$n) \(.verbs | tojson) \(.resourceNames | tojson)\"" "$tmp/all.json")"
e2e_eq "the Secret name allowed is the samples' spec.ssh.passwordSecretRef.name" "tianqing-ssh tianqing-ssh" \
  "$(kubectl create --dry-run=client -o json -f "$manifests/samples/tianqingupgrade.yaml" | jq -r .spec.ssh.passwordSecretRef.name) $(kubectl create --dry-run=client -o json -f "$manifests/samples/tianqingupgrade-minimal.yaml" | jq -r .spec.ssh.passwordSecretRef.name)"
e2e_eq "every binding's subject is the ServiceAccount $ns/$sa" "" \
  "$(jq -r ".items[] | select(.kind | endswith(\"Binding\")) | select(.subjects != [{kind: \"ServiceAccount\", name: \"$sa\", namespace: \"$ns\"}]) | .metadata.name" "$tmp/all.json")"

dep=$(jq '.items[] | select(.kind == "Deployment")' "$tmp/all.json")
pod='.spec.template.spec'
e2e_eq "Deployment: 1 replica, Recreate, ServiceAccount, pinned by tianqing.io/deploy-machine" \
  "1 Recreate $sa true" \
  "$(jq -r "\"\(.spec.replicas) \(.spec.strategy.type) \($pod.serviceAccountName) \($pod.nodeSelector[\"tianqing.io/deploy-machine\"])\"" <<<"$dep")"
e2e_eq "Deployment: hostNetwork, hostPID, hostPath /qaxdata mounted at /qaxdata" \
  "true true /qaxdata /qaxdata" \
  "$(jq -r "\"\($pod.hostNetwork) \($pod.hostPID) \($pod.volumes[0].hostPath.path) \($pod.containers[0].volumeMounts[0].mountPath)\"" <<<"$dep")"
args=$(jq -r "$pod.containers[0].args | join(\" \")" <<<"$dep")
for a in "--leader-elect" "--namespace=$ns" "--leader-election-namespace=$ns" \
         "--exec-prefix=nsenter -t 1 -m -u -i -n -p --" "--health-addr=127.0.0.1:18081"; do
  case " $args " in *" $a "*) e2e_ok "Deployment: args include $a" ;;
    *) e2e_not_ok "Deployment: args include $a" "args: $args" ;; esac
done
e2e_eq "Deployment: liveness /healthz, readiness /readyz on the health port" "/healthz 18081 /readyz 18081" \
  "$(jq -r "$pod.containers[0] | \"\(.livenessProbe.httpGet.path) \(.livenessProbe.httpGet.port) \(.readinessProbe.httpGet.path) \(.readinessProbe.httpGet.port)\"" <<<"$dep")"
e2e_eq "Deployment: readOnlyRootFilesystem, requests and a memory limit set" "true true true true" \
  "$(jq -r "$pod.containers[0] | \"\(.securityContext.readOnlyRootFilesystem) \(.resources.requests.cpu != null) \(.resources.requests.memory != null) \(.resources.limits.memory != null)\"" <<<"$dep")"
# the flags in the manifests are the binary's
unit=$manifests/systemd/tianqing-upgrade-controller.service
execstart=$(awk '/^ExecStart=/ { on = 1 } on { print; if (!/\\$/) exit }' "$unit")
unknown=''
for f in $(grep -oE -- '(^| )--[a-z][a-z-]*' <<<"$args $execstart" | tr -d ' ' | sort -u); do
  "$TQU_BIN" --help 2>&1 | grep -qE -- "^ +$f( |$)" || unknown="$unknown $f"
done
e2e_eq "every flag in deployment.yaml and the systemd unit's ExecStart is one of the binary's" "" "$unknown"
e2e_match "systemd unit: ExecStart has --kubeconfig /etc/tianqing-upgrade-controller/kubeconfig --leader-elect" \
  'kubeconfig /etc/tianqing-upgrade-controller/kubeconfig.*--leader-elect' "$(tr -d '\\\n' <<<"$execstart")"
e2e_match "systemd unit: KillMode=process (a detached update.sh survives a restart)" '^KillMode=process$' \
  "$(cat "$manifests/systemd/tianqing-upgrade-controller.service")"

# ------------------------------------------- 2. a whole upgrade under RBAC
# Everything but the Deployment, for real (no kubelet runs here anyway).
if out=$(jq '.items |= map(select(.kind != "Deployment"))' "$tmp/all.json" | kubectl apply -f - 2>&1); then
  e2e_ok "the Namespace, ServiceAccount and RBAC objects apply"
else
  e2e_not_ok "the Namespace, ServiceAccount and RBAC objects apply" "$out"
fi

kc=$("$TQU_CLUSTER_SH" issue-cert "$TQU_CLUSTER_DIR" tqu-rbac-sa "$user" \
       system:serviceaccounts "system:serviceaccounts:$ns" 2>"$tmp/issue.err")
if [ -s "$kc" ]; then e2e_ok "a client certificate for $user"
else e2e_not_ok "a client certificate for $user" "$(cat "$tmp/issue.err")"; e2e_summary; exit 1; fi
ki() { kubectl --kubeconfig "$kc" "$@"; }
out=$(ki -n default get secrets 2>&1)
e2e_match "the API server takes the certificate as user $user" "User \"$user\" cannot list" "$out"

# Leftovers of other scripts in $ns (test_crd.sh's samples): this upgrade
# must be the only one there.
kubectl -n "$ns" delete tqu --all --wait=false >/dev/null 2>&1
for t in $(kubectl -n "$ns" get tqu -o name 2>/dev/null); do
  kubectl -n "$ns" patch "$t" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
done
e2e_eventually 20 bash -c "[ -z \"\$(kubectl -n $ns get tqu -o name)\" ]" || e2e_not_ok "no TianqingUpgrade left in $ns"

up_world "$tmp" || { e2e_not_ok "fixtures"; e2e_summary; exit 1; }
# darwin-cdn as the vendor deploys it, so the controller has to patch it
kubectl replace -f "$TQU_FAKE_HOME/darwin-cdn-untuned.yaml" >/dev/null
up_secret "$ns"
# Secrets the controller must not read: another one here, the same name elsewhere
kubectl -n "$ns" create secret generic other-secret --from-literal=x=y >/dev/null 2>&1
kubectl -n default create secret generic tianqing-ssh --from-literal=password=not-yours >/dev/null 2>&1
up_kubelet_start
audit_mark=$(wc -l < "$TQU_AUDIT_LOG")
UP_KUBECONFIG=$kc up_controller ctl --namespace "$ns" --leader-elect --leader-election-namespace "$ns"
if e2e_eventually 30 grep -q '"msg":"became the leader"' "$UP_DIR/ctl.log"; then
  e2e_ok "the controller takes the Lease $ns/$sa as the ServiceAccount"
else
  e2e_not_ok "the controller takes the Lease $ns/$sa as the ServiceAccount" "$(tail -n 20 "$UP_DIR/ctl.log")"
fi
up_apply "$ns" "$name"

if kubectl -n "$ns" wait --for=condition=Ready "tqu/$name" --timeout=120s >/dev/null 2>&1; then
  e2e_ok "the upgrade becomes Ready under least privilege"
else
  e2e_not_ok "the upgrade becomes Ready under least privilege" \
    "$(kubectl -n "$ns" get tqu "$name" -o json | jq -c '{phase: .status.phase, step: .status.currentStep, message: .status.message}')" \
    "$(grep -i 'forbidden\|error' "$UP_DIR/ctl.log" | tail -n 10)"
fi
json=$(kubectl -n "$ns" get tqu "$name" -o json)
e2e_eq "phase Succeeded" Succeeded "$(jq -r .status.phase <<<"$json")"
e2e_eq "every step Succeeded (none skipped for want of a right)" \
  "Validate=Succeeded Preflight=Succeeded BackupDeployments=Succeeded PaasCheck=Succeeded SabreCleanup=Succeeded Upgrade=Succeeded CdnTuning=Succeeded Verify=Succeeded" \
  "$(jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")' <<<"$json")"
e2e_eq "Preflight did not skip the node-clock check for want of a right" "" \
  "$(jq -r '.status.steps[] | select(.name == "Preflight") | .message | select(test("no permission"))' <<<"$json")"
e2e_check_fails "sabre-server deleted" kubectl -n default-sabre-server get deploy sabre-server
e2e_check_fails "sabre-server-service deleted" kubectl -n default-sabre-server get svc sabre-server-service
e2e_eq "darwin-cdn patched (anti-affinity present)" "kubernetes.io/hostname" \
  "$(kubectl -n default get deploy darwin-cdn -o jsonpath='{.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey}')"
e2e_match "Events recorded in $ns" "UpgradeSucceeded" "$(kubectl -n "$ns" get events)"

# the drift watch (watch by field selector, allowed by resourceNames) works
kubectl replace -f "$TQU_FAKE_HOME/darwin-cdn-untuned.yaml" >/dev/null
if e2e_eventually 30 bash -c "[ \"\$(kubectl -n default get deploy darwin-cdn -o jsonpath='{.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey}')\" = kubernetes.io/hostname ]"; then
  e2e_ok "untuned darwin-cdn put back: tuned again (the drift watch works under RBAC)"
else
  e2e_not_ok "untuned darwin-cdn put back: tuned again (the drift watch works under RBAC)" "$(grep -i cdn "$UP_DIR/ctl.log" | tail -n 5)"
fi

e2e_eq "no \"forbidden\" in the controller's log" "" "$(grep -i 'forbidden' "$UP_DIR/ctl.log" | head -n 5)"
port=$(jq -r 'select(.msg | startswith("serving /healthz")) | .port' "$UP_DIR/ctl.log" 2>/dev/null | head -n1)
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>&1)
e2e_match "/metrics counts API requests" '^tqu_api_requests_total\{verb="[A-Z]+",code="2[0-9][0-9]"\} [1-9]' "$metrics"
e2e_eq "/metrics: no request answered 403" "" \
  "$(grep -E '^tqu_api_requests_total\{.*code="403"\}' <<<"$metrics" | grep -v ' 0$')"

# Every write the identity made, from the audit log: allowed, and only these.
writes=$(tail -n +"$((audit_mark + 1))" "$TQU_AUDIT_LOG" | jq -c --arg u "$user" \
  'select(.user.username == $u and .stage == "ResponseComplete")')
e2e_eq "no write by $user was refused (audit log: no 401/403; a 409 is a lost race, retried)" "" \
  "$(jq -r 'select(.responseStatus.code == 401 or .responseStatus.code == 403) | "\(.verb) \(.objectRef.resource)/\(.objectRef.subresource // "") \(.objectRef.namespace)/\(.objectRef.name): \(.responseStatus.code)"' <<<"$writes")"
made=$(jq -r '"\(.verb) \(.objectRef.resource)\(if .objectRef.subresource then "/" + .objectRef.subresource else "" end) \(.objectRef.namespace)\(if .verb == "create" or .objectRef.resource == "events" then "" else "/" + .objectRef.name end)"' <<<"$writes" | sort -u)
may="create events $ns
create leases $ns
delete deployments default-sabre-server/sabre-server
delete services default-sabre-server/sabre-server-service
patch deployments default/darwin-cdn
patch events $ns
patch tianqingupgrades $ns/$name
update leases $ns/$sa
update tianqingupgrades/status $ns/$name"
e2e_eq "its writes are among: Events, its Lease, the upgrade's finalizer and status, darwin-cdn, sabre" "" \
  "$(comm -23 <(printf '%s\n' "$made") <(printf '%s\n' "$may" | sort))"
e2e_eq "... and include every kind of them (creating the Lease and aggregating Events may not happen)" "" \
  "$(comm -13 <(printf '%s\n' "$made") <(printf '%s\n' "$may" | grep -v '^create leases\|^patch events' | sort))"

# ------------------------------------------------ 3. refused, and exact
refused() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then e2e_not_ok "refused: $desc" "succeeded: $*" "$out"
  elif grep -q "Forbidden\|forbidden" <<<"$out"; then e2e_ok "refused: $desc"
  else e2e_not_ok "refused: $desc" "failed, but not as Forbidden: $*" "$out"; fi
}
refused "get Secret tianqing-ssh in default" ki -n default get secret tianqing-ssh
refused "get another Secret in $ns" ki -n "$ns" get secret other-secret
refused "list Secrets in $ns" ki -n "$ns" get secrets
refused "watch Secret tianqing-ssh in $ns" ki get --raw "/api/v1/namespaces/$ns/secrets?fieldSelector=metadata.name%3Dtianqing-ssh&watch=1&timeoutSeconds=1"
refused "update Secret tianqing-ssh in $ns" ki -n "$ns" label secret tianqing-ssh x=y
refused "delete Deployment default/darwin-web (not sabre-server)" ki -n default delete deploy darwin-web
e2e_check "... and darwin-web is still there" kubectl -n default get deploy darwin-web
refused "patch Deployment default/darwin-web (not darwin-cdn nor a tuned one)" ki -n default patch deploy darwin-web --type=merge -p '{"metadata":{"labels":{"x":"y"}}}'
refused "watch every Deployment in default" ki get --raw "/apis/apps/v1/namespaces/default/deployments?watch=1&timeoutSeconds=1"
refused "delete Service default/proxy-pp (not sabre-server-service)" ki -n default delete svc proxy-pp
refused "create a Pod in $ns" ki -n "$ns" run x --image=busybox --restart=Never
refused "list Nodes" ki get nodes
refused "read TianqingUpgrades in default" ki -n default get tqu
refused "replace a TianqingUpgrade (PUT: update)" \
  bash -c "kubectl -n $ns get tqu $name -o json | kubectl --kubeconfig '$kc' replace -f -"
refused "delete a TianqingUpgrade" ki -n "$ns" delete tqu "$name"
refused "take another Lease in $ns" ki -n "$ns" get lease not-ours
refused "list Leases in $ns" ki -n "$ns" get leases
for q in "patch deployments/darwin-cdn -n kube-system" "create events -n default" "get secrets/tianqing-ssh -n kube-system" \
         "delete deployments/skylar-apiserver -n skylar" "update tianqingupgrades --subresource=status -n default" \
         "patch tianqingupgrades --subresource=status -n $ns" "list leases -n kube-system" "watch deployments -n default"; do
  # shellcheck disable=SC2086
  e2e_eq "kubectl auth can-i $q: no" no "$(ki auth can-i $q 2>/dev/null)"
done

# What the API server says the identity may do, per namespace, against what
# the manifests grant it: (apiGroup, resource, name, verb) tuples, without
# the self-review rights every user has (system:basic-user).
granted() {   # NS: from the SelfSubjectRulesReview
  ki create -o json -f - <<EOF | jq -r '.status.resourceRules[]
      | select((.apiGroups // [""]) != ["authorization.k8s.io"])
      | (.apiGroups // [""])[] as $g | .resources[] as $r | (.resourceNames // ["*"])[] as $n | .verbs[]
      | "\($g) \($r) \($n) \(.)"' | sort -u
{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"$1"}}
EOF
}
declared() {  # NS: from the manifests' bindings
  jq -r --arg ns "$1" --arg sa "$sa" --arg sans "$ns" '
    .items as $all
    | $all[] | select(.kind == "ClusterRoleBinding" or (.kind == "RoleBinding" and .metadata.namespace == $ns))
    | select(.subjects | any(.kind == "ServiceAccount" and .name == $sa and .namespace == $sans))
    | .roleRef as $ref
    | $all[] | select(.kind == $ref.kind and .metadata.name == $ref.name and (.kind == "ClusterRole" or .metadata.namespace == $ns))
    | .rules[] | (.apiGroups // [""])[] as $g | .resources[] as $r | (.resourceNames // ["*"])[] as $n | .verbs[]
    | "\($g) \($r) \($n) \(.)"' "$tmp/all.json" | sort -u
}
e2e_match "(the comparison has teeth: the Secret rule is among the grants in $ns)" '^ secrets tianqing-ssh get$' "$(granted "$ns")"
for n in "$ns" kube-node-lease default default-sabre-server kube-system; do
  e2e_eq "auth can-i --list -n $n is exactly what the manifests grant" "$(declared "$n")" "$(granted "$n")"
done

# ------------------------------------------------------------ clean up
# Leave the cluster as later scripts expect: no upgrade left in $ns (a
# controller watching every namespace would act on it), darwin-cdn untuned.
kubectl -n "$ns" delete tqu "$name" --timeout=30s >/dev/null 2>&1
up_stop ctl TERM
e2e_eq "the Lease is released on SIGTERM (update allowed)" "" \
  "$(kubectl -n "$ns" get lease "$sa" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)"
kubectl replace -f "$TQU_FAKE_HOME/darwin-cdn-untuned.yaml" >/dev/null 2>&1
kubectl -n default delete secret tianqing-ssh >/dev/null 2>&1
kubectl -n "$ns" delete secret other-secret >/dev/null 2>&1
e2e_summary
exit $?
