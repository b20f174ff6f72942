#!/usr/bin/env bash
# kill -9 of the controller at the start of EACH step of a
# TianqingAccessPointUpgrade (Validate, Extract, Gather, Decrypt,
# ConvertTemplate, Stage, LoadImages, ProxyService, CdnSetting, Install,
# Verify; Legacy is the other path), then a restart: the run completes
# without redoing a completed step and without a second installer run.
#
# One control plane; each case has its own namespace, its own package tree
# (stand-in darwin-client, plan_client and docker recording their calls, as
# in test_accesspoint.sh) and its own toVersion (so its own folder on the
# other machine: the real sshd on loopback, tests/support/sshd-setup.sh).
# proxy-pp already has 30083 (no fixsvc.sh). Per case:
#   - a controller (--namespace of the case) is killed with SIGKILL by the
#     reader of its log the moment it logs "step started" for that step
#     (armed_lib.sh); a step over in microseconds may finish before the kill
#     lands: the output says so;
#   - a normal controller finishes the run; then: phase Succeeded, every
#     step Succeeded (Extract and ProxyService Skipped: nothing to do), no
#     step other than the killed one with more than one attempt (the
#     killed one at most two), decrypt, plan_client update, docker load
#     here, docker load there and the installer each ran once (decrypt /
#     plan_client at most twice when killed in their own step: the tool
#     may already have been started, the step had not completed), and the
#     archive on the other machine has the package's sha256.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
source "$here/armed_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
chmod 0755 "$tmp"
UP_DIR=$tmp
sshd_pid=
remote=/tmp/tianqing-ap-upgrade       # tqu-ssh-test's home is /tmp
STEPS=(Validate Extract Gather Decrypt ConvertTemplate Stage LoadImages ProxyService CdnSetting Install Verify)
from=10.6.0.2401
pc_rel=tq_paas/skylar/skylar_linuxserver_client/plan_client
cleanup() {
  local n
  for n in "${!UP_PIDS[@]}"; do kill -KILL "${UP_PIDS[$n]}" 2>/dev/null; done
  pkill -f "$tmp/c/" 2>/dev/null || true
  [ -n "$sshd_pid" ] && { kill "$sshd_pid" 2>/dev/null; wait "$sshd_pid" 2>/dev/null; }
  for n in $(seq 1 ${#STEPS[@]}); do rm -rf "$remote/10.7.0.28$(printf %02d "$n")"; done
  [ -n "${TQAP_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "test_accesspoint_crash: needs root (its own sshd and test user)"; echo "0 passed, 1 failed"; exit 1; }
T0=$(date +%s)

# ------------------------------------------------------- the other machine
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sport=$(free_port)
pw="tqu test pw 'x' \$1"     # the same as test_ssh.c's and test_accesspoint.sh's
mkdir -p "$tmp/sshd" "$tmp/rbin" "$tmp/rrec"
chmod 0777 "$tmp/rrec"
printf '%s' "$pw" | "$TQU_REPO/tests/support/sshd-setup.sh" "$tmp/sshd" "$sport" >/dev/null
# docker there: records "<args>" and the sha256 of what it loads
cat > "$tmp/rbin/docker" <<EOF
#!/bin/sh
echo "\$*" >> $tmp/rrec/docker.remote
case \$1 in load) echo "\$3 \$(sha256sum "\$3" | cut -d' ' -f1)" >> $tmp/rrec/docker.remote.sha ;; esac
EOF
chmod 0755 "$tmp/rbin/docker"
echo "SetEnv PATH=$tmp/rbin:/usr/bin:/bin" >> "$tmp/sshd/sshd_config"
/usr/sbin/sshd -D -e -f "$tmp/sshd/sshd_config" >"$tmp/sshd.log" 2>&1 &
sshd_pid=$!
e2e_eventually 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sport" || { e2e_not_ok "sshd started" "$(cat "$tmp/sshd.log")"; e2e_summary; exit 1; }
known=$(for t in ed25519 ecdsa; do printf '[127.0.0.1]:%s %s\n' "$sport" "$(cut -d' ' -f1,2 "$tmp/sshd/ssh_host_${t}_key.pub")"; done)

# proxy-pp already with 30083: ProxyService only checks
kubectl -n default delete svc proxy-pp --wait=true >/dev/null 2>&1
kubectl apply -f - >/dev/null <<EOF
{"apiVersion":"v1","kind":"Service","metadata":{"name":"proxy-pp","namespace":"default"},
 "spec":{"selector":{"app":"proxy-pp"},"ports":[{"name":"p8083","port":8083,"targetPort":8083},
 {"name":"p30083","port":30083,"targetPort":30083}]}}
EOF

# ------------------------------------------------------- one case's world
# make_case DIR TO: the installed access point and the new package in
# DIR/qax/cli, the stand-in tools (records in DIR/rec)
make_case() {
  local d=$1 to=$2 root=$1/qax/cli new
  new=$root/$to
  mkdir -p "$d/rec" "$d/bin" "$root/$pc_rel/third_party/ansible_inventory" "$root/tq_saas" \
    "$new/$pc_rel" "$new/tq_paas/skylar/skylar_linuxserver_client/darwin-client" "$new/tq_saas"
  printf 'deploy-server.db\n' > "$root/$pc_rel/deploy-server.db"
  printf '[nodes]\n10.0.0.12\n' > "$root/$pc_rel/third_party/ansible_inventory/hosts"
  printf 'all:\n  vars: {}\n' > "$root/$pc_rel/third_party/ansible_inventory/group_vars"
  printf 'version: %s\ns3:\n  access_key: AKOLD\nweb:\n  darwincdn: darwin-cdn:8080\n' "$from" \
    > "$root/tq_saas/darwin_template_abc123.yaml"
  # the same s3 section as the old template: the converter succeeds at once
  printf 'version: %s\ns3:\n  access_key: AKOLD\nweb:\n  darwincdn: "darwin-cdn:8080"\n' "$to" \
    > "$new/tq_saas/template.yaml.enc"
  head -c 256K /dev/urandom > "$new/tq_saas/skylar_linux_console_images.tar"
  cat > "$new/tq_paas/skylar/skylar_linuxserver_client/darwin-client/darwin-client" <<'EOF'
#!/bin/sh
echo "$*" >> "$TQAP_REC/darwin-client.calls"
case $1 in
decrypt) echo "$*" >> "$TQAP_REC/decrypt.calls"; cp template.yaml.enc template.yaml ;;
install) echo "$*" >> "$TQAP_REC/install.calls"; echo done ;;   # at once: no 10 s re-check
*) exit 2 ;;
esac
EOF
  cat > "$new/$pc_rel/plan_client" <<'EOF'
#!/bin/sh
echo "$*" >> "$TQAP_REC/plan_client.calls"
cp template.yaml "darwin_update_template_20261205220000.yaml"
EOF
  chmod 0644 "$new/$pc_rel/plan_client"     # Gather makes it executable
  cat > "$d/bin/docker" <<EOF
#!/bin/sh
echo "\$*" >> $d/rec/docker.local
EOF
  chmod 0755 "$d/bin/docker"
}

lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
cnt() { local n; n=$(grep -c -- "$1" "$2" 2>/dev/null); echo "${n:-0}"; }   # lines of $2 matching $1
apjson() { kubectl -n "$ns" get tqap ap -o json 2>/dev/null; }
state() {
  apjson | jq -r '"\(.status.phase // "") \(
    [.status.conditions[]? | select(.type=="Stalled" and .status=="True") | .reason][0]
    // [.status.conditions[]? | select(.type=="Ready") | .reason][0] // "")"'
}
at() { [ "$(state)" = "$1" ]; }
steps_line() { jq -r '[.status.steps[]? | select(.name != "Legacy") | "\(.name)=\(.state)/\(.attempts // 0)"] | join(" ")' <<<"$1"; }
ctl_env() { PATH=$d/bin:$PATH TQAP_REC=$d/rec "$@"; }

# ------------------------------------------------------- the cases
i=0
for step in "${STEPS[@]}"; do
  i=$((i + 1))
  to=10.7.0.28$(printf %02d "$i")
  ns=tqapc-$(tr 'A-Z' 'a-z' <<<"$step")
  d=$tmp/c/$step
  rm -rf "$remote/$to"
  make_case "$d" "$to"
  root=$d/qax/cli
  kubectl create namespace "$ns" >/dev/null 2>&1
  kubectl -n "$ns" create configmap ap-known-hosts --from-literal=known_hosts="$known" >/dev/null
  kubectl -n "$ns" create secret generic tianqing-ssh --from-literal=password="$pw" >/dev/null
  ctl_env armed_start "k-$step" "$(armed_started_re "$step")" --namespace "$ns" --allowed-root "$d"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingAccessPointUpgrade
metadata: {name: ap, namespace: $ns}
spec:
  fromVersion: $from
  toVersion: $to
  packages: {root: $root}
  install: {planClientDir: $root/$pc_rel, saasDir: $root/tq_saas}
  backupDir: $d/backups
  ssh: {user: tqu-ssh-test, knownHostsConfigMap: ap-known-hosts}
  machines: ["127.0.0.1:$sport"]
EOF
  if e2e_eventually 60 test -e "$tmp/k-$step.fired"; then
    e2e_ok "$step: killed at its \"step started\""
  else
    e2e_not_ok "$step: killed at its \"step started\"" "$(state)" "$(steps_line "$(apjson)")" "$(tail -n 5 "$tmp/k-$step.log")"
  fi
  armed_kill9 "k-$step"
  json=$(apjson)
  st=$(jq -r --arg s "$step" '.status.steps[]? | select(.name==$s) | .state' <<<"$json")
  at_kill="at the kill: $(steps_line "$json")"
  case $st in Succeeded) echo "# $step: the step was over before the kill landed ($at_kill)" ;;
              *) echo "# $step: $at_kill" ;; esac
  t1=$(date +%s)
  ctl_env up_controller "n-$step" --namespace "$ns" --allowed-root "$d" ||
    e2e_not_ok "$step: controller restarted" "$(tail -n 5 "$tmp/n-$step.log")"
  if e2e_eventually 60 at "Succeeded AccessPointUpgraded"; then
    e2e_ok "$step: after the restart: Succeeded"
  else
    e2e_not_ok "$step: after the restart: Succeeded" "$(state)" "$(steps_line "$(apjson)")" "$(tail -n 5 "$tmp/n-$step.log")"
  fi
  up_stop "n-$step" KILL   # the run is over (TERM waits ~3 s for the shutdown)
  echo "# $step: the restarted controller finished in $(( $(date +%s) - t1 )) s"
  json=$(apjson)
  # Extract: the package is a folder already; ProxyService: proxy-pp has 30083
  e2e_eq "$step: every step Succeeded (Extract and ProxyService: nothing to do, Skipped)" \
    "Validate=Succeeded Extract=Skipped Gather=Succeeded Decrypt=Succeeded ConvertTemplate=Succeeded Stage=Succeeded LoadImages=Succeeded ProxyService=Skipped CdnSetting=Succeeded Install=Succeeded Verify=Succeeded" \
    "$(jq -r '[.status.steps[] | select(.name != "Legacy") | "\(.name)=\(.state)"] | join(" ")' <<<"$json")"
  e2e_eq "$step: no completed step run again (attempts: 1, the killed step at most 2)" "" \
    "$(jq -r --arg s "$step" '[.status.steps[] | select(.name != "Legacy")
        | select((.attempts // 0) > (if .name == $s then 2 else 1 end) or (.attempts // 0) < 1)
        | "\(.name)=\(.attempts // 0)"] | join(" ")' <<<"$json")"
  # the killed step itself had not completed: Decrypt and ConvertTemplate
  # (file transforms) may run their tool again when the kill landed just
  # after it was started (as test_accesspoint.sh's kill in ConvertTemplate);
  # docker load and the installer never twice
  dx=1 px=1
  [ "$step" = Decrypt ] && dx='[12]'
  [ "$step" = ConvertTemplate ] && px='[12]'
  e2e_match "$step: decrypt, plan_client update, docker load here, docker load there, installer: once each (the killed step's own tool at most twice)" \
    "^decrypt=$dx plan_client=$px here=1 there=1 install=1\$" \
    "decrypt=$(lines "$d/rec/decrypt.calls") plan_client=$(lines "$d/rec/plan_client.calls") here=$(cnt '^load ' "$d/rec/docker.local") there=$(cnt "^load .*/$to/" "$tmp/rrec/docker.remote") install=$(lines "$d/rec/install.calls")"
  sum=$(sha256sum "$root/$to/tq_saas/skylar_linux_console_images.tar" | cut -d' ' -f1)
  e2e_eq "$step: the archive on the other machine: its sha256, and docker load there read it" "$sum $sum" \
    "$(sha256sum "$remote/$to/skylar_linux_console_images.tar" 2>/dev/null | cut -d' ' -f1) $(grep "/$to/" "$tmp/rrec/docker.remote.sha" 2>/dev/null | cut -d' ' -f2 | paste -sd' ')"
done
echo "# test_accesspoint_crash took $(( $(date +%s) - T0 )) s"
e2e_summary
exit $?
