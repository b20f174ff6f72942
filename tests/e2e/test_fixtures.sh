#!/usr/bin/env bash
# The fake Tianqing world of tests/fixtures/ checks itself: make-qaxdata.sh
# builds the trees it promises; the fake darwin-client and update.sh record
# their calls and act out every scenario (selected by the scenario file,
# with env defaults); the password given to update.sh is written nowhere;
# cluster-objects.yaml applies, set-rollout.sh makes `kubectl rollout
# status` agree, and update.sh's replace-cdn scenario undoes a tuning of
# darwin-cdn on the real API server.
#
#   tests/cluster/with-cluster.sh tests/e2e/test_fixtures.sh
# (tree.env files are made at run time:)
# shellcheck disable=SC1091
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
e2e_require_cluster

fx=$root/tests/fixtures
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tqu-fixtures.XXXXXX")
bg_pid=''
cleanup() {
  [ -z "$bg_pid" ] || kill -KILL -- "-$bg_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck disable=SC2016  # shell metacharacters on purpose: data, never expanded
PASSWORD='Pa55 w0rd;$(id)`x`'

# ---------------------------------------------------------------- the tree
q=$tmp/qaxdata
out=$("$fx/make-qaxdata.sh" "$q" 2>&1)
e2e_eq "make-qaxdata.sh succeeds" 0 $?
# shellcheck source=/dev/null
. "$q/fake/tree.env"
e2e_eq "tree.env is what it printed" "$out" "$(cat "$q/fake/tree.env")"
e2e_eq "default versions" "10.6.0.2600 10.7.0.2800" "$OLD_VERSION $NEW_VERSION"
pc=tq_paas/skylar/skylar_linuxserver_client/plan_client
e2e_eq "paths follow the runbook" \
  "$q/cli/10.6.0.2600/tq_saas/darwin-client $q/cli/10.7.0.2800/$pc/update.sh $q/cli/$pc $q/s/services/mongo/data" \
  "$OLD_DARWIN_CLIENT $UPDATE_SH $TEMPLATE_DIR $MONGO_DATA_DIR"
e2e_check "old darwin-client is executable" test -x "$OLD_DARWIN_CLIENT"
e2e_check "new darwin-client is executable" test -x "$NEW_DIR/tq_saas/darwin-client"
e2e_eq "templates: install + two update templates" \
  "darwin_template_26285abe2200902d.yaml darwin_update_template_20240612103000.yaml darwin_update_template_20250301120000.yaml" \
  "$(cd "$TEMPLATE_DIR" && echo *.yaml)"
e2e_eq "expected template: the newest update template" "$TEMPLATE_DIR/darwin_update_template_20250301120000.yaml" "$TEMPLATE"
e2e_eq "MongoDB data: 64 MiB apparent" 67108864 "$MONGO_BYTES"
alloc=$(du -sk "$MONGO_DATA_DIR" | cut -f1)
e2e_check "MongoDB data is sparse by default ($alloc KiB allocated)" test "$alloc" -lt 1024
e2e_check "no archive by default" test -z "$ARCHIVE"

for kind in install none ambiguous; do
  d=$tmp/t-$kind
  "$fx/make-qaxdata.sh" "$d" --templates "$kind" >/dev/null 2>&1
  names=$(cd "$d/cli/$pc" && shopt -s nullglob && f=(*) && echo "${f[*]}")
  expect=$(. "$d/fake/tree.env" && echo "$TEMPLATE")
  case $kind in
  install) e2e_eq "--templates install: one install template, expected" \
             "darwin_template_26285abe2200902d.yaml|$d/cli/$pc/darwin_template_26285abe2200902d.yaml" "$names|$expect" ;;
  none) e2e_eq "--templates none: no template" "|" "$names|$expect" ;;
  ambiguous) e2e_eq "--templates ambiguous: two install templates, none expected" \
               "darwin_template_26285abe2200902d.yaml darwin_template_7f3c0a9e11d2b864.yaml|" "$names|$expect" ;;
  esac
done

d=$tmp/t-real
"$fx/make-qaxdata.sh" "$d" --mongo-real --mongo-size 3M --old 10.3.0.4200 --new 10.7.0.2800 >/dev/null 2>&1
e2e_eq "--mongo-real --mongo-size 3M: 3 MiB apparent" 3145728 "$(. "$d/fake/tree.env" && echo "$MONGO_BYTES")"
e2e_check "--mongo-real: allocated too" test "$(du -sk "$d/s/services/mongo/data" | cut -f1)" -ge 3072
e2e_eq "--old: the old package's darwin-client reports it" "darwin-client version 10.3.0.4200 (fake, for tests)" \
  "$("$d/cli/10.3.0.4200/tq_saas/darwin-client" version)"
d=$tmp/t-big
"$fx/make-qaxdata.sh" "$d" --mongo-size 500G >/dev/null 2>&1
e2e_eq "--mongo-size 500G costs nothing" "536870912000 yes" \
  "$(. "$d/fake/tree.env" && echo "$MONGO_BYTES") $([ "$(du -sk "$d" | cut -f1)" -lt 2048 ] && echo yes)"

d=$tmp/t-archive
"$fx/make-qaxdata.sh" "$d" --archive >/dev/null 2>&1
arch=$(. "$d/fake/tree.env" && echo "$ARCHIVE")
e2e_eq "--archive: only the tarball in the new folder" "tianqing-10.7.0.2800.tar.gz" "$(ls "$d/cli/10.7.0.2800")"
e2e_eq "ARCHIVE names it" "$d/cli/10.7.0.2800/tianqing-10.7.0.2800.tar.gz" "$arch"
e2e_check "the tarball extracts as the controller does it (tar -xf A -C NEW)" tar -xf "$arch" -C "$d/cli/10.7.0.2800"
e2e_check "extracted: update.sh and an executable darwin-client" \
  test -f "$d/cli/10.7.0.2800/$pc/update.sh" -a -x "$d/cli/10.7.0.2800/tq_saas/darwin-client"
d=$tmp/t-archive2
"$fx/make-qaxdata.sh" "$d" --archive-name pkg.tar >/dev/null 2>&1
e2e_check "--archive-name pkg.tar: an uncompressed tarball" tar -tf "$d/cli/10.7.0.2800/pkg.tar" ./tq_saas/darwin-client

e2e_check_fails "a non-empty folder is refused" "$fx/make-qaxdata.sh" "$q"
e2e_check_fails "a bad version is refused" "$fx/make-qaxdata.sh" "$tmp/t-bad" --new 10.7
e2e_check_fails "a bad size is refused" "$fx/make-qaxdata.sh" "$tmp/t-bad2" --mongo-size 12X
e2e_check_fails "an unknown template kind is refused" "$fx/make-qaxdata.sh" "$tmp/t-bad3" --templates newest

# ------------------------------------------------------------ darwin-client
rec=$TQU_FAKE_RECORD
scen() { "$fx/fake-scenario.sh" "$q" "$@"; }
# paas: run the runbook's PaaS check from the old package's tq_saas; sets
# rc, out and n (the call's number).
paas() {
  out=$(cd "$OLD_DIR/tq_saas" && ./darwin-client install --data.source=local --execute.type=k8s \
        --template.file="$TEMPLATE" --actions=paas_check 2>&1)
  rc=$?
  n=$(cat "$rec/darwin-client.calls")
}
failing() { printf '%s\n' "$out" | sed -n 's/.*组件 \([a-z]*\) 检查失败.*/\1/p' | tr '\n' ' ' | sed 's/ $//'; }

paas
e2e_eq "paas_check, no scenario: passes (exit 0, nothing failing)" "0||全部通过" \
  "$rc|$(failing)|$(printf '%s\n' "$out" | grep -o '全部通过')"
e2e_eq "records the argv, one per line" \
  "install
--data.source=local
--execute.type=k8s
--template.file=$TEMPLATE
--actions=paas_check" "$(cat "$rec/darwin-client.$n.argv")"
e2e_eq "records the working folder and exit code" "$OLD_DIR/tq_saas 0" \
  "$(cat "$rec/darwin-client.$n.cwd") $(cat "$rec/darwin-client.$n.exit")"
e2e_match "records KUBECONFIG from its environment" "^KUBECONFIG=$KUBECONFIG$" "$(cat "$rec/darwin-client.$n.env")"

scen paas_check=edr; paas
e2e_eq "paas_check=edr: es, flink, sabre fail, exit 1" "1|es flink sabre" "$rc|$(failing)"
e2e_match "edr output mixes Chinese and English over several lines" "组件 es 检查失败 component es: .*red" "$out"
scen paas_edr_components=es; paas
e2e_eq "paas_edr_components=es: only es fails" "1|es" "$rc|$(failing)"
scen --unset paas_edr_components
scen paas_check=other; paas
e2e_eq "paas_check=other: mongodb fails" "1|mongodb" "$rc|$(failing)"
scen paas_check=mixed paas_other_component=redis; paas
e2e_eq "paas_check=mixed paas_other_component=redis: es and redis fail" "1|es redis" "$rc|$(failing)"
scen --unset paas_other_component
scen paas_check=unknown; paas
e2e_eq "paas_check=unknown: exit 1, no component named, an error line" "1||1" \
  "$rc|$(failing)|$(printf '%s\n' "$out" | grep -c '\[ERROR\]')"
scen paas_check=exit; paas
e2e_eq "paas_check=exit: exit 2, no failure line at all" "2|0" "$rc|$(printf '%s\n' "$out" | grep -Eci 'error|fail|失败')"
scen paas_exit_code=7; paas
e2e_eq "paas_exit_code=7" 7 "$rc"
e2e_eq "the exit code is recorded" 7 "$(cat "$rec/darwin-client.$n.exit")"
scen --reset
TQU_FAKE_PAAS_CHECK=other paas
e2e_eq "no key in the file: the environment (TQU_FAKE_PAAS_CHECK) decides" "1|mongodb" "$rc|$(failing)"
scen paas_check=pass
TQU_FAKE_PAAS_CHECK=other paas
e2e_eq "a key in the file wins over the environment" "0|" "$rc|$(failing)"
scen paas_delay=1
t0=$(date +%s%N); paas; t1=$(date +%s%N)
e2e_check "paas_delay=1 takes a second ($(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -ge 1000
scen --reset
e2e_eq "--show after --reset: nothing active" "" "$(scen --show)"

out=$(cd "$OLD_DIR/tq_saas" && ./darwin-client install --data.source=local --execute.type=k8s \
      --template.file=/nonexistent.yaml --actions=paas_check 2>&1); rc=$?
e2e_eq "a missing template: exit 1 naming it" "1 yes" "$rc $(printf '%s' "$out" | grep -q 'open /nonexistent.yaml' && echo yes)"
(cd "$OLD_DIR/tq_saas" && ./darwin-client install --bogus >/dev/null 2>&1); rc=$?
e2e_eq "an unknown flag: exit 2" 2 "$rc"
e2e_eq "every call was counted (13)" 13 "$(cat "$rec/darwin-client.calls")"

# ------------------------------------------------------------ update.sh
plan=$NEW_DIR/$pc
# upd [ARGS...]: the runbook's command from plan_client; sets rc, out, n.
upd() {
  out=$(cd "$plan" && sh update.sh "$@" 2>&1)
  rc=$?
  n=$(cat "$rec/update.sh.calls")
}
std_args=(-s "$OLD_DIR" -n "$NEW_DIR" -t "$TEMPLATE" -u root -P "$PASSWORD" -p 2222 -d "$q")

scen update_seconds=1
t0=$(date +%s%N); upd "${std_args[@]}"; t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
e2e_eq "update.sh success: exit 0, last line says so" "0 yes" \
  "$rc $(printf '%s\n' "$out" | tail -n1 | grep -q '升级完成 upgrade finished successfully' && echo yes)"
e2e_check "update_seconds=1 takes about a second ($ms ms)" test "$ms" -ge 900 -a "$ms" -lt 5000
e2e_eq "its run is counted (1)" 1 "$n"
e2e_eq "records argv with the password as ***" \
  "-s $OLD_DIR -n $NEW_DIR -t $TEMPLATE -u root -P *** -p 2222 -d $q" "$(tr '\n' ' ' < "$rec/update.sh.$n.argv" | sed 's/ $//')"
e2e_eq "records the password's sha256" "$(printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1)" \
  "$(cat "$rec/update.sh.$n.password.sha256")"
e2e_eq "records the working folder and exit code" "$plan 0" \
  "$(cat "$rec/update.sh.$n.cwd") $(cat "$rec/update.sh.$n.exit")"
e2e_check "progress in <new>/tq_saas/install_saas.log" grep -q '\[10/10\]' "$INSTALL_LOG"
e2e_check "progress on stdout" grep -q '\[10/10\]' <<<"$out"
dc=$(cat "$rec/darwin-client.calls")
e2e_eq "it ran the new package's darwin-client install (execute.type=k8s, PaaS check on)" \
  "$NEW_DIR/tq_saas|install --data.source=local --execute.type=k8s --template.file=$TEMPLATE" \
  "$(cat "$rec/darwin-client.$dc.cwd" 2>/dev/null || true)|$(tr '\n' ' ' < "$rec/darwin-client.$dc.argv" | sed 's/ $//')"

upd -s "$OLD_DIR" -n "$NEW_DIR" -t "$TEMPLATE" -u root -p 22 -d false
e2e_eq "no -P: exit 2, counted (2)" "2 2" "$rc $n"
out=$(cd "$q" && sh "$UPDATE_SH" "${std_args[@]}" 2>&1); rc=$?
e2e_eq "run from another folder: exit 2 naming the folder" "2 yes" "$rc $(grep -q 'must be run from its own folder' <<<"$out" && echo yes)"
upd -s "$OLD_DIR" -n "$NEW_DIR" -t "$TEMPLATE" -u root -P x -p 70000 -d false
e2e_eq "port 70000: exit 2" 2 "$rc"
upd -s "$OLD_DIR" -n "$NEW_DIR" -t "$TEMPLATE" -u root -P x -p 22 -d "$q/nonexistent"
e2e_eq "-d to a missing folder: exit 2" 2 "$rc"
upd -s "$OLD_DIR" -n "$NEW_DIR" -t "$q/none.yaml" -u root -P x -p 22 -d false
e2e_eq "-t to a missing template: exit 2" 2 "$rc"

# The PaaS check inside the upgrade, and the runbook's edit that skips it.
scen paas_check=edr
upd "${std_args[@]}"
e2e_eq "es/flink/sabre failing and update.sh not edited: the upgrade stops (exit 1)" "1 yes" \
  "$rc $(grep -q 'paas check failed, install aborted' "$INSTALL_LOG" && echo yes)"
cp "$UPDATE_SH" "$tmp/update.sh.orig"
sed -i 's/execute\.type=k8s/& --paas.check=false/' "$UPDATE_SH"   # the runbook's own edit
upd "${std_args[@]}"
dc=$(cat "$rec/darwin-client.calls")
e2e_eq "after the runbook's sed: exit 0, darwin-client got --paas.check=false" "0 yes" \
  "$rc $(grep -qx -- '--paas.check=false' "$rec/darwin-client.$dc.argv" && echo yes)"
cp "$tmp/update.sh.orig" "$UPDATE_SH"
scen --unset paas_check

scen update=fail
upd "${std_args[@]}"
e2e_eq "update=fail: exit 1, the error in install_saas.log" "1 yes" \
  "$rc $(tail -n 2 "$INSTALL_LOG" | grep -q '升级失败 upgrade failed' && echo yes)"
scen update_exit_code=4
upd "${std_args[@]}"
e2e_eq "update_exit_code=4" "4 4" "$rc $(cat "$rec/update.sh.$n.exit")"
scen --unset update_exit_code

scen update=flood update_flood_mib=3
bytes=$(cd "$plan" && sh update.sh "${std_args[@]}" 2>&1 | wc -c)
n=$(cat "$rec/update.sh.calls")
e2e_eq "update=flood update_flood_mib=3: more than 3 MiB on stdout, exit 0" "yes 0" \
  "$([ "$bytes" -gt 3145728 ] && echo yes || echo "no ($bytes)") $(cat "$rec/update.sh.$n.exit")"
e2e_check "and in install_saas.log" test "$(stat -c %s "$INSTALL_LOG")" -gt 3145728

scen update=hang
(cd "$plan" && exec setsid sh update.sh "${std_args[@]}" >"$tmp/hang.out" 2>&1) &
bg_pid=$!
sleep 2
e2e_check "update=hang: still running after 2 s" kill -0 "$bg_pid"
kill -TERM -- "-$bg_pid" 2>/dev/null
wait "$bg_pid" 2>/dev/null
n=$(cat "$rec/update.sh.calls")
group_gone() { ! kill -0 -- "-$1" 2>/dev/null; }
e2e_check "killed: its whole process group is gone" e2e_eventually 5 group_gone "$bg_pid"
bg_pid=''
e2e_check "a hung run writes no exit record" test ! -e "$rec/update.sh.$n.exit"
scen --reset

e2e_eq "the password is in no file: tree, records, install log, update.sh's output" "" \
  "$(grep -rlF -- "$PASSWORD" "$tmp" 2>/dev/null || true)"
e2e_eq "fake-scenario.sh --clear-records empties the records" "" \
  "$(scen --clear-records && ls "$rec")"

# ------------------------------------------------------------ the cluster
# objects: cluster-objects.yaml as one JSON array (kubectl prints a List or
# a stream of objects, depending on its version)
objects() {
  kubectl create --dry-run=client -o json -f "$fx/cluster-objects.yaml" |
    jq -s '[.[] | if .kind == "List" then .items[] else . end]'
}
e2e_check "kubectl apply -f cluster-objects.yaml" kubectl apply -f "$fx/cluster-objects.yaml"
out=$(kubectl apply -f "$fx/cluster-objects.yaml" 2>&1)
e2e_eq "applying it again changes nothing" "" "$(grep -v ' unchanged$' <<<"$out")"
e2e_eq "darwin-cdn-untuned.yaml is the darwin-cdn of cluster-objects.yaml" \
  "$(objects | jq -S '.[] | select(.kind == "Deployment" and .metadata.name == "darwin-cdn")')" \
  "$(kubectl create --dry-run=client -o json -f "$fx/darwin-cdn-untuned.yaml" | jq -S .)"
e2e_eq "the old sabre: Deployment and Service in default-sabre-server" \
  "deployment.apps/sabre-server service/sabre-server-service" \
  "$(kubectl -n default-sabre-server get deploy/sabre-server svc/sabre-server-service -o name | tr '\n' ' ' | sed 's/ $//')"
e2e_eq "darwin-cdn: container darwin-cdn, label app=darwin-cdn, untuned" "darwin-cdn log-agent|darwin-cdn|null|null" \
  "$(kubectl -n default get deploy darwin-cdn -o json |
     jq -r '[(.spec.template.spec.containers | map(.name) | join(" ")), .metadata.labels.app,
             (.spec.template.spec.volumes | tostring), (.spec.template.spec.affinity | tostring)] | join("|")')"
ours=(default-sabre-server/sabre-server default/darwin-cdn default/styx-file-assessment-go default/edge2
      default/darwin-web skylar/skylar-apiserver skylar/skylar-scheduler xinghai/xinghai-query)
e2e_check "a rollout is not complete before set-rollout.sh" \
  sh -c '! kubectl -n default rollout status deploy/darwin-cdn --timeout=1s'

out=$("$fx/set-rollout.sh" --all 2>&1); rc=$?
e2e_eq "set-rollout.sh --all: one line per Deployment" "0 yes" \
  "$rc $(grep -q '^default/darwin-cdn: 3/3 ready, observedGeneration 1 of 1$' <<<"$out" && echo yes)"
ok=0
for nn in "${ours[@]}"; do
  kubectl -n "${nn%%/*}" rollout status "deploy/${nn#*/}" --timeout=5s >/dev/null 2>&1 && ok=$((ok + 1))
done
e2e_eq "kubectl rollout status succeeds for all ${#ours[@]} Deployments" "${#ours[@]}" "$ok"
e2e_eq "darwin-cdn: READY 3/3, Available=True, observedGeneration = generation" "3/3 True 1 1" \
  "$(kubectl -n default get deploy darwin-cdn -o json |
     jq -r '"\(.status.readyReplicas)/\(.spec.replicas) \(.status.conditions[] | select(.type=="Available") | .status) \(.status.observedGeneration) \(.metadata.generation)"')"
"$fx/set-rollout.sh" default darwin-cdn --ready 1 >/dev/null
e2e_eq "--ready 1: 1/3, Available=False, unavailableReplicas 2" "1/3 False 2" \
  "$(kubectl -n default get deploy darwin-cdn -o json |
     jq -r '"\(.status.availableReplicas)/\(.spec.replicas) \(.status.conditions[] | select(.type=="Available") | .status) \(.status.unavailableReplicas)"')"
e2e_check "and kubectl rollout status no longer succeeds" \
  sh -c '! kubectl -n default rollout status deploy/darwin-cdn --timeout=1s'
kubectl -n default patch deploy darwin-cdn --type=merge -p '{"spec":{"template":{"metadata":{"annotations":{"x":"1"}}}}}' >/dev/null
"$fx/set-rollout.sh" default darwin-cdn --stale >/dev/null
e2e_eq "--stale: observedGeneration one behind" "1 2" \
  "$(kubectl -n default get deploy darwin-cdn -o jsonpath='{.status.observedGeneration} {.metadata.generation}')"
"$fx/set-rollout.sh" default --all >/dev/null
e2e_eq "NS --all: the namespace's Deployments, unavailableReplicas removed" "2 2 3 null" \
  "$(kubectl -n default get deploy darwin-cdn -o json | jq -r '"\(.status.observedGeneration) \(.metadata.generation) \(.status.availableReplicas) \(.status.unavailableReplicas)"')"

# update.sh puts back an untuned darwin-cdn (what the controller must correct)
kubectl -n default patch deploy darwin-cdn --type=strategic -p '{"spec":{"template":{"spec":{
  "volumes":[{"name":"darwin-cdn-data","hostPath":{"path":"/qaxdata/s/services/data/darwin-cdn-data","type":"DirectoryOrCreate"}}],
  "containers":[{"name":"darwin-cdn","volumeMounts":[{"name":"darwin-cdn-data","mountPath":"/home/s/darwin-cdn/data/"}]}],
  "affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchExpressions":[{"key":"app","operator":"In","values":["darwin-cdn"]}]},"topologyKey":"kubernetes.io/hostname"}]}}}}}}' >/dev/null
tuned=$(kubectl -n default get deploy darwin-cdn -o json | jq -r '[.spec.template.spec.volumes[0].name, .metadata.uid, .metadata.generation] | join(" ")')
scen update=replace-cdn update_seconds=0
upd "${std_args[@]}"
after=$(kubectl -n default get deploy darwin-cdn -o json | jq -r '[(.spec.template.spec.volumes | tostring), (.spec.template.spec.affinity | tostring), .metadata.uid, .metadata.generation] | join(" ")')
read -r _ uid gen <<<"$tuned"
e2e_eq "update=replace-cdn: exit 0; darwin-cdn untuned again, same uid, new generation" \
  "0 null null $uid $((gen + 1))" "$rc $after"
e2e_match "its kubectl output is recorded" "deployment.apps/darwin-cdn replaced" "$(cat "$rec/update.sh.$n.kubectl")"
scen update_cdn_mode=recreate
upd "${std_args[@]}"
e2e_eq "update_cdn_mode=recreate: exit 0, a new uid" "0 yes" \
  "$rc $([ "$(kubectl -n default get deploy darwin-cdn -o jsonpath='{.metadata.uid}')" != "$uid" ] && echo yes)"
scen --reset

# Leave the shared control plane as we found it (the namespaces stay: with no
# namespace controller running, a deleted one would stay Terminating forever).
objects | jq '{apiVersion: "v1", kind: "List", items: map(select(.kind != "Namespace"))}' |
  kubectl delete -f - >/dev/null 2>&1
e2e_eq "clean-up: the objects are gone" "" \
  "$(kubectl get deploy,svc -A --no-headers 2>/dev/null | grep -E 'sabre-server|darwin-cdn|styx-file|edge2|darwin-web|skylar-|xinghai-query|proxy-pp' || true)"

e2e_summary
