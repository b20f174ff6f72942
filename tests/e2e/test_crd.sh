#!/usr/bin/env bash
# The TianqingUpgrade CRD on a real API server: it loads (idempotently), the
# samples apply, kubectl shows the printer columns, short name and category,
# defaults are filled in, the status subresource works, every field is
# documented, and malformed resources are refused by the API server with the
# offending field named (and not created).
#
#   tests/cluster/with-cluster.sh tests/e2e/test_crd.sh
# $(...) in the refused cases is data for the API server, never expanded:
# shellcheck disable=SC2016
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
e2e_require_cluster

crd=tianqingupgrades.upgrade.tianqing.io
ns=tianqing-upgrade
samples=$root/manifests/samples
k() { kubectl -n "$ns" "$@"; }

# ------------------------------------------------------------------ the CRD
e2e_check "kubectl apply -f crds/ succeeds" kubectl apply -f "$root/crds/"
out=$(kubectl apply -f "$root/crds/" 2>&1)
e2e_match "kubectl apply -f crds/ again changes nothing" "^customresourcedefinition.apiextensions.k8s.io/$crd unchanged$" "$out"
e2e_check "the CRD is Established" kubectl wait --for=condition=Established "crd/$crd" --timeout=30s

json=$(kubectl get crd "$crd" -o json)
e2e_eq "names: kind, listKind, plural, singular, shortNames, categories" \
  'TianqingUpgrade TianqingUpgradeList tianqingupgrades tianqingupgrade ["tqu"] ["tianqing"]' \
  "$(jq -rc '.spec.names | "\(.kind) \(.listKind) \(.plural) \(.singular) \(.shortNames) \(.categories)"' <<<"$json")"
e2e_eq "group upgrade.tianqing.io, Namespaced, one version v1alpha1 served and stored, status subresource" \
  'upgrade.tianqing.io Namespaced v1alpha1 true true {}' \
  "$(jq -rc '.spec | "\(.group) \(.scope) \([.versions[].name] | join(",")) \(.versions[0].served) \(.versions[0].storage) \(.versions[0].subresources.status)"' <<<"$json")"
e2e_eq "printer columns FROM TO PHASE STEP AGE, MESSAGE and LAST-ATTEMPT at priority 1" \
  'FROM=.spec.fromVersion:0 TO=.spec.toVersion:0 PHASE=.status.phase:0 STEP=.status.currentStep:0 AGE=.metadata.creationTimestamp:0 MESSAGE=.status.message:1 LAST-ATTEMPT=.status.history[0].outcome:1' \
  "$(jq -r '[.spec.versions[0].additionalPrinterColumns[] | "\(.name)=\(.jsonPath):\(.priority // 0)"] | join(" ")' <<<"$json")"
undocumented=$(jq -r '.spec.versions[0].schema.openAPIV3Schema
  | paths(type == "object") as $p | getpath($p) as $node
  | select($p[-2] == "properties" or $p[-1] == "items")
  | select($p != ["properties", "metadata"] and ($node.description // "") == "")
  | $p | map(tostring) | map(select(. != "properties")) | join(".")' <<<"$json" 2>&1)
e2e_eq "every field of the schema has a description" "" "$undocumented"
e2e_eq "no x-kubernetes-preserve-unknown-fields anywhere (fully structural)" "0" \
  "$(jq '[.. | objects | select(has("x-kubernetes-preserve-unknown-fields"))] | length' <<<"$json")"
# The API server publishes a new CRD's OpenAPI a few seconds after it is
# Established; kubectl explain reads that, so give it time.
e2e_eventually 30 sh -c 'kubectl explain tqu.spec.machines 2>/dev/null | grep -q "3, 4, 6, 9 or 12"'
out=$(kubectl explain tqu.spec.machines 2>&1)
e2e_match "kubectl explain tqu.spec.machines shows the description" "3, 4, 6, 9 or 12" "$out"

# ------------------------------------------------------------------ samples
e2e_check "create namespace $ns" sh -c "kubectl create namespace $ns --dry-run=client -o yaml | kubectl apply -f -"
e2e_check "apply manifests/samples/ssh-secret.yaml" kubectl apply -f "$samples/ssh-secret.yaml"
e2e_check "apply manifests/samples/tianqingupgrade.yaml" kubectl apply -f "$samples/tianqingupgrade.yaml"
e2e_check "apply manifests/samples/tianqingupgrade-minimal.yaml" kubectl apply -f "$samples/tianqingupgrade-minimal.yaml"
# (the Secret is left out: kubectl reports a stringData Secret "configured" on every apply)
out=$(kubectl apply -f "$samples/tianqingupgrade.yaml" -f "$samples/tianqingupgrade-minimal.yaml" 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$(printf '%s\n' "$out" | grep -vc ' unchanged$')" = 0 ]; then
  e2e_ok "applying the TianqingUpgrade samples again changes nothing"
else
  e2e_not_ok "applying the TianqingUpgrade samples again changes nothing" "$out"
fi

full="to-10.7.0.2800"
minimal="minimal-to-10.7.0.2800"
written=$(kubectl create --dry-run=client -o json -f "$samples/tianqingupgrade.yaml" | jq -S .spec)
stored=$(k get tqu "$full" -o json | jq -S .spec)
e2e_eq "the full sample is stored exactly as written (no field pruned or changed)" "$written" "$stored"

# ------------------------------------------------------------------ kubectl get
out=$(k get tqu 2>&1)
e2e_match "kubectl get tqu: headers NAME FROM TO PHASE STEP AGE" '^NAME +FROM +TO +PHASE +STEP +AGE$' "$(head -n1 <<<"$out")"
e2e_match "kubectl get tqu lists the full sample with FROM and TO" "^$full +10\.6\.0\.2600 +10\.7\.0\.2800 " "$out"
e2e_match "kubectl get tqu lists the minimal sample" "^$minimal +10\.6\.0\.2600 +10\.7\.0\.2800 " "$out"
out=$(k get tqu -o wide 2>&1)
e2e_match "kubectl get tqu -o wide adds MESSAGE and LAST-ATTEMPT" '^NAME +FROM +TO +PHASE +STEP +AGE +MESSAGE +LAST-ATTEMPT$' "$(head -n1 <<<"$out")"
out=$(k get tianqing 2>&1)
# (the category has more than one kind: kubectl names each object's kind)
e2e_match "kubectl get tianqing (category) lists the full sample" "^(tianqingupgrade\.upgrade\.tianqing\.io/)?$full +10\.6\.0\.2600 " "$out"
e2e_match "kubectl get tianqing lists the minimal sample too" "^(tianqingupgrade\.upgrade\.tianqing\.io/)?$minimal +10\.6\.0\.2600 " "$out"
e2e_check "kubectl get tianqingupgrade (singular) works" k get tianqingupgrade "$full"
e2e_check "kubectl get tianqingupgrades.upgrade.tianqing.io works" k get tianqingupgrades.upgrade.tianqing.io "$full"

# ------------------------------------------------------------------ defaults
jp() { k get tqu "$minimal" -o jsonpath="{$1}"; }
e2e_eq "default spec.ssh.user is root (jsonpath)" root "$(jp .spec.ssh.user)"
e2e_eq "default spec.ssh.port is 22 (jsonpath)" 22 "$(jp .spec.ssh.port)"
e2e_eq "default spec.timeouts.upgrade is 3h (jsonpath)" 3h "$(jp .spec.timeouts.upgrade)"
e2e_eq "default spec.disk.maxUsagePercent is 80 (jsonpath)" 80 "$(jp .spec.disk.maxUsagePercent)"
e2e_eq "default spec.cdn.cacheHostPath (jsonpath)" /qaxdata/s/services/data/darwin-cdn-data "$(jp .spec.cdn.cacheHostPath)"
e2e_eq "default spec.packages.archive is the empty string, present (jsonpath)" '"archive":""' \
  "$(k get tqu "$minimal" -o json | jq -c '.spec.packages | {archive}' | tr -d '{}')"
expected=$(jq -S . <<'EOF'
{"fromVersion":"10.6.0.2600","initialVersion":"10.6.0.2000","toVersion":"10.7.0.2800","machines":6,
 "edrEnabled":false,"paused":false,"dryRun":false,
 "packages":{"root":"/qaxdata/cli","archive":""},"template":"",
 "ssh":{"user":"root","port":22,"passwordSecretRef":{"name":"tianqing-ssh","key":"password"}},
 "dataBackup":{"enabled":true,"dir":"/qaxdata"},"backupDir":"/qaxdata/tianqing-upgrade/backups",
 "confirmations":{"endpointHotfixApplied":false,"clientAutoUpdateDisabled":false,"xinghaiReady":false},
 "disk":{"dataRoot":"/qaxdata","mongoDataDir":"/qaxdata/s/services/mongo/data","reserveGiB":70,"maxUsagePercent":80},
 "cdn":{"namespace":"default","deployment":"darwin-cdn","cachePersistence":true,
        "cacheHostPath":"/qaxdata/s/services/data/darwin-cdn-data","antiAffinity":true},
 "timeouts":{"paasCheck":"15m","upgrade":"3h","verify":"20m"}}
EOF
)
e2e_eq "the minimal sample's whole spec, defaults filled in, is design.md's sample without window" \
  "$expected" "$(k get tqu "$minimal" -o json | jq -S .spec)"

# ------------------------------------------------------------------ status subresource
gen=$(k get tqu "$full" -o jsonpath='{.metadata.generation}')
e2e_check "status is written through the status subresource" \
  k patch tqu "$full" --subresource=status --type=merge -p '{"status":{"observedGeneration":1,"phase":"Running","currentStep":"Preflight","message":"checking the disk","conditions":[{"type":"Reconciling","status":"True","reason":"StepRunning","message":"Preflight","lastTransitionTime":"2026-12-05T22:00:00Z","observedGeneration":1}],"steps":[{"name":"Validate","state":"Succeeded","attempts":1},{"name":"Preflight","state":"Running","attempts":1,"startedAt":"2026-12-05T22:00:00Z"}]}}'
out=$(k get tqu "$full" -o wide 2>&1)
e2e_match "-o wide shows PHASE, STEP and MESSAGE from status (no attempt yet: LAST-ATTEMPT empty)" "^$full +10\.6\.0\.2600 +10\.7\.0\.2800 +Running +Preflight +[0-9a-z]+ +checking the disk( +<none>| *)$" "$out"
e2e_eq "a status write leaves metadata.generation alone" "$gen" "$(k get tqu "$full" -o jsonpath='{.metadata.generation}')"
k patch tqu "$full" --type=merge -p '{"status":{"phase":"Succeeded"}}' >/dev/null 2>&1
e2e_eq "status sent to the main resource is ignored" Running "$(k get tqu "$full" -o jsonpath='{.status.phase}')"
k patch tqu "$full" --subresource=status --type=merge -p '{"spec":{"machines":9}}' >/dev/null 2>&1
e2e_eq "spec sent to the status subresource is ignored" 6 "$(k get tqu "$full" -o jsonpath='{.spec.machines}')"
e2e_check "a status with an empty message and the backup/upgrade/plan blocks is accepted" \
  k patch tqu "$full" --subresource=status --type=merge -p '{"status":{"message":"","backup":{"folder":"/qaxdata/tianqing-upgrade/backups/run-1","listFile":"/qaxdata/tianqing-upgrade/backups/run-1/deploy_20261205220000.log","listSha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","manifestsFile":"/qaxdata/tianqing-upgrade/backups/run-1/deployments.json","manifestsSha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","deploymentCount":2000,"completedAt":"2026-12-05T22:01:00Z"},"upgrade":{"command":"sh update.sh -s -n -t -u root -P 22 -p ****** -d /qaxdata","logFile":"/qaxdata/tianqing-upgrade/backups/run-1/update.log","exitCodeFile":"/qaxdata/tianqing-upgrade/backups/run-1/update.exit","pid":4242,"startedAt":"2026-12-05T22:10:00Z","elapsedSeconds":60,"outputTail":"line 1\nline 2"},"plan":[{"step":"SabreCleanup","action":"Delete","target":"apps/v1/deployments/default-sabre-server/sabre-server"},{"step":"Upgrade","action":"Command","target":"sh","detail":"sh update.sh -p ******"}]}}'
out=$(k patch tqu "$full" --subresource=status --type=merge -p '{"status":{"phase":"Exploded"}}' 2>&1)
e2e_match "an invalid status.phase is refused, naming status.phase" 'status\.phase: Unsupported value' "$out"
out=$(k patch tqu "$full" --subresource=status --type=merge -p '{"status":{"steps":[{"name":"Verify","state":"Done"}]}}' 2>&1)
e2e_match "an invalid status.steps[].state is refused, naming the field" 'status\.steps(\[0\])?\.state: Unsupported value' "$out"
out=$(k patch tqu "$full" --subresource=status --type=merge -p '{"status":{"conditions":[{"type":"Ready","status":"Maybe","reason":"X","message":"","lastTransitionTime":"2026-12-05T22:00:00Z"}]}}' 2>&1)
e2e_match "an invalid condition status is refused, naming the field" 'status\.conditions(\[0\])?\.status: Unsupported value' "$out"

# ------------------------------------------------------------------ accepted edge values
edge=$(jq -c . <<'EOF'
{"apiVersion":"upgrade.tianqing.io/v1alpha1","kind":"TianqingUpgrade","metadata":{"name":"edge-values"},
 "spec":{"fromVersion":"10.3.0.3200","initialVersion":"10.3.0.3200","toVersion":"10.7.0.2800","machines":12,
  "window":{"start":"2026-12-05T14:00:00Z","end":"2026-12-06T04:00:00.5+08:00"},
  "packages":{"root":"/qaxdata/cli/","archive":"TianQing_V10_10.7.0.2800-x86_64.tar.gz"},
  "template":"/qaxdata/s/darwin_update_template_20250101120000.yaml",
  "ssh":{"user":"tq_admin-1","port":65535,"passwordSecretRef":{"name":"ssh.tianqing-1","key":"ssh_password.v2"}},
  "disk":{"reserveGiB":0,"maxUsagePercent":100},"dataBackup":{"enabled":false,"dir":"/"},
  "timeouts":{"paasCheck":"1h30m","upgrade":"1.5h","verify":"300s"}}}
EOF
)
e2e_check "boundary values are accepted (machines 12, port 65535, reserveGiB 0, maxUsagePercent 100, 1h30m, 1.5h)" \
  k create --validate=false -f - <<<"$edge"
e2e_check "... and deleted" k delete tqu edge-values --wait=true
out=$(k create --validate=false -o json -f - <<<"$(jq -c '.metadata.name="unknown-field" | .spec.bogus="x" | .spec.ssh.bogus=1' <<<"$edge")" 2>&1)
e2e_eq "unknown fields are pruned, not stored" "null null" "$(jq -r '"\(.spec.bogus) \(.spec.ssh.bogus)"' <<<"$out" 2>&1)"
k delete tqu unknown-field --wait=true >/dev/null 2>&1

# ------------------------------------------------------------------ refused
base=$(kubectl create --dry-run=client -o json -f "$samples/tianqingupgrade-minimal.yaml" | jq -c 'del(.metadata.namespace)')
n=0
# refuse DESCRIPTION FIELD JQ-EDIT: the edited minimal sample must be refused
# by the API server (client-side validation off; kubectl -v=6 shows the
# server's 422 answer to the POST) with FIELD named, and must not exist.
refuse() {
  local desc=$1 field=$2 edit=$3 name obj out
  n=$((n + 1))
  name=bad-$n
  obj=$(jq -c ".metadata.name = \"$name\" | $edit" <<<"$base") || { e2e_not_ok "refused: $desc" "bad jq edit: $edit"; return; }
  if out=$(k create --validate=false -v=6 -f - <<<"$obj" 2>&1); then
    e2e_not_ok "refused: $desc" "the API server accepted it: $out"
    k delete tqu "$name" >/dev/null 2>&1
    return
  fi
  if grep -q 'POST https://.*/tianqingupgrades.* 422 Unprocessable Entity' <<<"$out" &&
     grep -q "is invalid: " <<<"$out" && grep -qF -- "$field: " <<<"$out"; then
    e2e_ok "refused: $desc (names $field)"
  else
    e2e_not_ok "refused: $desc (names $field)" "no 422 from the server naming $field:" "$out"
  fi
  out=$(k get tqu "$name" 2>&1)
  if grep -q 'NotFound\|not found' <<<"$out"; then e2e_ok "refused: $desc: not created"
  else e2e_not_ok "refused: $desc: not created" "$out"; fi
}

refuse 'fromVersion "10.7.0" (three parts)'        spec.fromVersion     '.spec.fromVersion = "10.7.0"'
refuse 'fromVersion "10.7.0.2800a"'                spec.fromVersion     '.spec.fromVersion = "10.7.0.2800a"'
refuse 'toVersion "v10.7.0.2800"'                  spec.toVersion       '.spec.toVersion = "v10.7.0.2800"'
refuse 'initialVersion "10.6.0.2000.1" (five parts)' spec.initialVersion '.spec.initialVersion = "10.6.0.2000.1"'
refuse 'toVersion "10.7.0.2800; rm -rf /"'         spec.toVersion       '.spec.toVersion = "10.7.0.2800; rm -rf /"'
refuse 'fromVersion "$(reboot)"'                   spec.fromVersion     '.spec.fromVersion = "$(reboot)"'
refuse 'fromVersion with a trailing newline'       spec.fromVersion     '.spec.fromVersion = "10.6.0.2600\n"'
refuse 'machines: 5'                               spec.machines        '.spec.machines = 5'
refuse 'machines: "6" (a string)'                  spec.machines        '.spec.machines = "6"'
refuse 'machines: 6.5'                             spec.machines        '.spec.machines = 6.5'
refuse 'ssh.port: 0'                               spec.ssh.port        '.spec.ssh.port = 0'
refuse 'ssh.port: 70000'                           spec.ssh.port        '.spec.ssh.port = 70000'
refuse 'disk.maxUsagePercent: 0'                   spec.disk.maxUsagePercent '.spec.disk.maxUsagePercent = 0'
refuse 'disk.maxUsagePercent: 101'                 spec.disk.maxUsagePercent '.spec.disk.maxUsagePercent = 101'
refuse 'disk.reserveGiB: -1'                       spec.disk.reserveGiB '.spec.disk.reserveGiB = -1'
refuse 'fromVersion missing'                       spec.fromVersion     'del(.spec.fromVersion)'
refuse 'initialVersion missing'                    spec.initialVersion  'del(.spec.initialVersion)'
refuse 'toVersion missing'                         spec.toVersion       'del(.spec.toVersion)'
refuse 'machines missing'                          spec.machines        'del(.spec.machines)'
refuse 'ssh missing'                               spec.ssh             'del(.spec.ssh)'
refuse 'ssh.passwordSecretRef missing'             spec.ssh.passwordSecretRef 'del(.spec.ssh.passwordSecretRef)'
refuse 'ssh.passwordSecretRef.key missing'         spec.ssh.passwordSecretRef.key 'del(.spec.ssh.passwordSecretRef.key)'
refuse 'ssh.passwordSecretRef.name missing'        spec.ssh.passwordSecretRef.name 'del(.spec.ssh.passwordSecretRef.name)'
refuse 'spec missing'                              spec                 'del(.spec)'
refuse 'edrEnabled: "yes" (a string)'              spec.edrEnabled      '.spec.edrEnabled = "yes"'
refuse 'paused: 1 (a number)'                      spec.paused          '.spec.paused = 1'
refuse 'timeouts.upgrade: "90 minutes"'            spec.timeouts.upgrade '.spec.timeouts.upgrade = "90 minutes"'
refuse 'timeouts.verify: "-5m" (negative)'         spec.timeouts.verify '.spec.timeouts.verify = "-5m"'
refuse 'packages.root: "qaxdata/cli" (relative)'   spec.packages.root   '.spec.packages.root = "qaxdata/cli"'
refuse 'backupDir with $(id)'                      spec.backupDir       '.spec.backupDir = "/qaxdata/$(id)"'
refuse 'dataBackup.dir with a space'               spec.dataBackup.dir  '.spec.dataBackup.dir = "/qaxdata/my backup"'
refuse 'cdn.cacheHostPath with a newline'          spec.cdn.cacheHostPath '.spec.cdn.cacheHostPath = "/qaxdata/x\n/etc"'
refuse 'disk.mongoDataDir with ".." components'    spec.disk.mongoDataDir '.spec.disk.mongoDataDir = "/qaxdata/../etc"'
refuse 'template relative'                         spec.template        '.spec.template = "darwin_template_1.yaml"'
refuse 'packages.archive "../../etc/passwd"'       spec.packages.archive '.spec.packages.archive = "../../etc/passwd"'
refuse 'window.start: "tomorrow 22:00"'            spec.window.start    '.spec.window = {"start":"tomorrow 22:00","end":"2026-12-06T04:00:00+08:00"}'
refuse 'window.start: "2026-13-05T22:00:00+08:00" (month 13)' spec.window.start '.spec.window = {"start":"2026-13-05T22:00:00+08:00","end":"2026-12-06T04:00:00+08:00"}'
refuse 'window.end missing'                        spec.window.end      '.spec.window = {"start":"2026-12-05T22:00:00+08:00"}'
refuse 'ssh.user "root;id"'                        spec.ssh.user        '.spec.ssh.user = "root;id"'
refuse 'ssh.passwordSecretRef.name "Tianqing_SSH"' spec.ssh.passwordSecretRef.name '.spec.ssh.passwordSecretRef.name = "Tianqing_SSH"'
refuse 'ssh.passwordSecretRef.key "pass word"'     spec.ssh.passwordSecretRef.key '.spec.ssh.passwordSecretRef.key = "pass word"'
refuse 'cdn.namespace "Default" (not DNS-1123)'    spec.cdn.namespace   '.spec.cdn.namespace = "Default"'
refuse 'cdn.deployment "darwin_cdn"'               spec.cdn.deployment  '.spec.cdn.deployment = "darwin_cdn"'

e2e_eq "no refused resource exists" "$(printf '%s\n' "$full" "$minimal" | sort)" \
  "$(k get tqu -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort)"

e2e_summary
