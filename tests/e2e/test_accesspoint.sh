#!/usr/bin/env bash
# TianqingAccessPointUpgrade on the real control plane, with stand-in vendor
# tools (darwin-client decrypt/install, a plan_client whose `update template`
# fails on an old s3 section as the runbook describes, fixsvc.sh, docker
# recording its calls) and a real OpenSSH server on loopback as the access
# point's other machine (tests/support/sshd-setup.sh: user tqu-ssh-test):
#   - going 10.6 -> 10.7 the conversion fails once, the s3 section of
#     template.yaml is replaced by the old template's and it succeeds; the
#     edit is byte-minimal (only the s3 lines differ from the kept original),
#     and so is CdnSetting's (only the darwincdn line);
#   - LoadImages: docker load ran here once; an unknown host key
#     (HostKeyUnknown, with the fingerprint), a wrong password (AuthFailed), a
#     refused connection (ConnectionRefused) and a connection dropped
#     mid-transfer (ConnectionDropped) each stop it with their own reason,
#     nothing loaded there and no archive there but the .part; then the
#     archive arrives intact (sha256) and docker load runs there once;
#   - proxy-pp without 30083: a fixsvc.sh whose md5 does not match is never
#     run (FixsvcChecksumMismatch); a start marker without a result is not
#     run again (FixsvcOutcomeUnknown); with the right md5 its copy runs once
#     and the Service gets the port;
#   - kill -9 of the controller while the installer runs: restarted, it
#     follows the same installer: one run, Succeeded; no step redone.
#   - a second upgrade with proxy-pp already on 30083 runs no fixsvc.sh;
#     below 10.3.0.3201: Blocked LegacyDockerAccessPoint, nothing touched.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
chmod 0755 "$tmp"
UP_DIR=$tmp
sshd_pid=
remote=/tmp/tianqing-ap-upgrade       # tqu-ssh-test's home is /tmp
cleanup() {
  up_cleanup
  pkill -f "$tmp/qax/cli" 2>/dev/null || true
  [ -n "$sshd_pid" ] && { kill "$sshd_pid" 2>/dev/null; wait "$sshd_pid" 2>/dev/null; }
  # only this script's version folder: test_accesspoint_crash (E2E_JOBS=2
  # may run it beside this one) uploads to other versions' folders there
  [ -n "${TQAP_KEEP:-}" ] || { rm -rf "$tmp" "${remote:?}/${to:-none}"; rmdir "$remote" 2>/dev/null; }
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "test_accesspoint: needs root (its own sshd and test user)"; echo "0 passed, 1 failed"; exit 1; }
ns=tqap-e2e
from=10.6.0.2401 to=10.7.0.2800
rm -rf "${remote:?}/$to"
root=$tmp/qax/cli
pc_rel=tq_paas/skylar/skylar_linuxserver_client/plan_client
new=$root/$to
rec=$tmp/rec
mkdir -p "$rec" "$tmp/bin" "$tmp/rbin" "$root/$pc_rel/third_party/ansible_inventory" "$root/tq_saas" \
  "$new/$pc_rel" "$new/tq_paas/skylar/skylar_linuxserver_client/darwin-client" "$new/tq_saas"
chmod 0777 "$rec"

# ------------------------------------------------------- the installed access point
printf 'deploy-server.db\n' > "$root/$pc_rel/deploy-server.db"
printf '[nodes]\n10.0.0.12\n' > "$root/$pc_rel/third_party/ansible_inventory/hosts"
printf 'all:\n  vars: {}\n' > "$root/$pc_rel/third_party/ansible_inventory/group_vars"
cat > "$root/tq_saas/darwin_template_abc123.yaml" <<'EOF'
# the access point's template (10.6)
version: 10.6.0.2401
s3:
  access_key: AKOLD
  secret_key: SKOLD
  endpoint: http://minio.default:9000
web:
  darwincdn: darwin-cdn:8080
EOF
# ------------------------------------------------------- the new package
cat > "$new/tq_saas/template.yaml.enc" <<'EOF'
# Tianqing access point template 10.7
version: 10.7.0.2800

s3:
  # the new layout, which the converter cannot fill from a 10.6 template
  region: cn-north-1
  bucket_v2: tianqing

web:
  port: 8443
  darwincdn: "darwin-cdn:8080"   # the cdn the consoles use
  theme: dark
proxy:
  service: proxy-pp
  ports: [8083, 30083]
# end
EOF
head -c 32M /dev/urandom > "$new/tq_saas/skylar_linux_console_images.tar"
cat > "$new/tq_paas/skylar/skylar_linuxserver_client/darwin-client/darwin-client" <<'EOF'
#!/bin/sh
# stand-in darwin-client: decrypt copies, install records and sleeps
echo "$*" >> "$TQAP_REC/darwin-client.calls"
case $1 in
decrypt) cp template.yaml.enc template.yaml ;;
install) echo "install $*" >> "$TQAP_REC/install.calls"; echo "installing"; sleep 6; echo done ;;
*) exit 2 ;;
esac
EOF
cat > "$new/$pc_rel/plan_client" <<'EOF'
#!/bin/sh
# stand-in plan_client update template: refuses a template.yaml whose s3
# section is not the old template's (the 10.6 -> 10.7 conversion error)
echo "$*" >> "$TQAP_REC/plan_client.calls"
[ -e "$TQAP_REC/slow-convert" ] && { rm -f "$TQAP_REC/slow-convert"; touch "$TQAP_REC/converting"; sleep 5; }
src=${3#--src=}
s3() { awk '/^s3:/{on=1; print; next} on && /^[^ #]/{on=0} on' "$1"; }
if [ "$(s3 "$src")" != "$(s3 template.yaml)" ]; then
  echo "convert error: s3: unknown field bucket_v2 (copy the s3 section of $src)"; exit 3
fi
cp template.yaml "darwin_update_template_20261205220000.yaml"
echo converted
EOF
chmod 0644 "$new/$pc_rel/plan_client"     # Gather makes it executable
# ------------------------------------------------------- docker, here and there
for side in local remote; do
  d=$tmp/bin; [ $side = remote ] && d=$tmp/rbin
  cat > "$d/docker" <<EOF
#!/bin/sh
echo "\$*" >> $rec/docker.$side
date +%T.%N >> $rec/docker.$side.when
case \$1 in
load) sha256sum "\$3" | cut -d' ' -f1 >> $rec/docker.$side.sha ;;
ps) [ "\$2" = -aq ] && printf 'c1c1c1c1c1c1\\nc2c2c2c2c2c2\\n' || printf 'CONTAINER ID   IMAGE\\nc1   old/console\\nc2   old/proxy\\n' ;;
esac
EOF
  chmod 0755 "$d/docker"
done
# ------------------------------------------------------- fixsvc.sh
cat > "$tmp/qax/fixsvc.sh" <<'EOF'
#!/bin/sh
echo run >> "$TQAP_REC/fixsvc.calls"
kubectl -n default patch svc proxy-pp --type=json \
  -p '[{"op":"add","path":"/spec/ports/-","value":{"name":"p30083","port":30083,"targetPort":30083}}]'
EOF
fix_md5=$(md5sum "$tmp/qax/fixsvc.sh" | cut -d' ' -f1)
proxy_pp() {  # proxy-pp with the ports given
  kubectl -n default delete svc proxy-pp --wait=true >/dev/null 2>&1
  local p ports=''
  for p in "$@"; do ports="$ports{\"name\":\"p$p\",\"port\":$p,\"targetPort\":$p},"; done
  kubectl apply -f - >/dev/null <<EOF
{"apiVersion":"v1","kind":"Service","metadata":{"name":"proxy-pp","namespace":"default"},
 "spec":{"selector":{"app":"proxy-pp"},"ports":[${ports%,}]}}
EOF
}
proxy_pp 8083

# ------------------------------------------------------- the other machine: sshd
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sport=$(free_port); dead=$(free_port)
# the user tqu-ssh-test is shared with tests/unit/test_ssh.c, which may run
# beside this script: the same password, so neither changes it under the other
pw="tqu test pw 'x' \$1"
mkdir -p "$tmp/sshd"
printf '%s' "$pw" | "$TQU_REPO/tests/support/sshd-setup.sh" "$tmp/sshd" "$sport" >/dev/null
# docker there is the stand-in; the SFTP server reads slowly while $tmp/slow
# exists (so a transfer can be cut in the middle)
cat > "$tmp/slow-sftp" <<PY
#!/usr/bin/python3
import os, subprocess, time
p = subprocess.Popen(["/usr/lib/openssh/sftp-server"], stdin=subprocess.PIPE)
while True:
    d = os.read(0, 32768)
    if not d:
        break
    p.stdin.write(d)
    p.stdin.flush()
    if os.path.exists("$tmp/slow"):
        time.sleep(0.05)
p.stdin.close()
raise SystemExit(p.wait())
PY
chmod 0755 "$tmp/slow-sftp"
sed -i "s|^Subsystem sftp .*|Subsystem sftp $tmp/slow-sftp|" "$tmp/sshd/sshd_config"
echo "SetEnv PATH=$tmp/rbin:/usr/bin:/bin" >> "$tmp/sshd/sshd_config"
/usr/sbin/sshd -D -e -f "$tmp/sshd/sshd_config" >"$tmp/sshd.log" 2>&1 &
sshd_pid=$!
e2e_eventually 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sport" || { e2e_not_ok "sshd started" "$(cat "$tmp/sshd.log")"; e2e_summary; exit 1; }
known=$(for t in ed25519 ecdsa; do printf '[127.0.0.1]:%s %s\n' "$sport" "$(cut -d' ' -f1,2 "$tmp/sshd/ssh_host_${t}_key.pub")"; done)
fp_ed=$(ssh-keygen -lf "$tmp/sshd/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
fp_ec=$(ssh-keygen -lf "$tmp/sshd/ssh_host_ecdsa_key.pub" | cut -d' ' -f2)
kubectl create namespace "$ns" >/dev/null 2>&1
kh() { kubectl -n "$ns" create configmap ap-known-hosts --from-literal=known_hosts="$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
secret() { kubectl -n "$ns" create secret generic tianqing-ssh --from-literal=password="$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
kh "# nothing known yet"
secret "$pw"

# ------------------------------------------------------- helpers
state() {  # "<phase> <reason>"
  kubectl -n "$ns" get tqap "$1" -o json 2>/dev/null | jq -r '"\(.status.phase // "") \(
    [.status.conditions[]? | select(.type=="Stalled" and .status=="True") | .reason][0]
    // [.status.conditions[]? | select(.type=="Reconciling" and .status=="True") | .reason][0]
    // [.status.conditions[]? | select(.type=="Ready") | .reason][0] // "")"'
}
at() { [ "$(state "$1")" = "$2" ]; }
steps() { kubectl -n "$ns" get tqap "$1" -o json | jq -r '[.status.steps[] | "\(.name)=\(.state)"] | join(" ")'; }
check_state() {  # SECONDS NAME STATE DESC
  if e2e_eventually "$1" at "$2" "$3"; then e2e_ok "$4"
  else e2e_not_ok "$4" "state: $(state "$2")" "$(kubectl -n "$ns" get tqap "$2" -o json |
    jq -c '[.status.steps[]? | "\(.name)=\(.state): \(.message)"]')" "$(tail -n 5 "$tmp/ctl.log")"; fi
}
kill_below() {  # SIGKILL every process below PID (the connection's whole tree)
  local c
  for c in $(pgrep -P "$1"); do kill_below "$c"; kill -KILL "$c" 2>/dev/null; done
}
machine() { kubectl -n "$ns" get tqap ap -o json | jq -r --arg h "$1" ".status.machines[] | select(.host==\$h) | .$2"; }
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
bump() {  # a new generation: the Blocked step runs again
  kubectl -n "$ns" patch tqap ap --type=merge -p "{\"spec\":{\"timeouts\":{\"imageLoad\":\"$1\"}}}" >/dev/null
}
pkg_default="{root: $root}"
apply_ap() {  # NAME EXTRA-SPEC-LINES (PKG: spec.packages)
  kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingAccessPointUpgrade
metadata: {name: $1, namespace: $ns}
spec:
  fromVersion: $from
  toVersion: $to
  packages: ${PKG:-$pkg_default}
  install: {planClientDir: $root/$pc_rel, saasDir: $root/tq_saas}
  backupDir: $tmp/backups
  ssh: {user: tqu-ssh-test, knownHostsConfigMap: ap-known-hosts}
$2
EOF
}
start_ctl() {
  PATH=$tmp/bin:$PATH TQAP_REC=$rec up_controller ctl --allowed-root "$tmp"
}

# ------------------------------------------------------- the run
T0=$(date +%s)
start_ctl || { e2e_not_ok "controller started" "$(tail -n 20 "$tmp/ctl.log")"; e2e_summary; exit 1; }
apply_ap ap "  machines: [\"127.0.0.1:$sport\"]
  fixsvc: {path: $tmp/qax/fixsvc.sh, md5: 0123456789abcdef0123456789abcdef}"
check_state 60 ap "Blocked HostKeyUnknown" "an unknown host key: Blocked HostKeyUnknown"
fp=$(machine "127.0.0.1:$sport" fingerprint)
e2e_check "status.machines[]: the server key's fingerprint" test "$fp" = "$fp_ed" -o "$fp" = "$fp_ec"
e2e_check "HostKeyUnknown names that fingerprint" grep -qF -- "host key $fp is not in ConfigMap ap-known-hosts" \
  <(kubectl -n "$ns" get tqap ap -o jsonpath='{.status.message}')
e2e_eq "status.machines[]: the machine's result" HostKeyUnknown "$(machine "127.0.0.1:$sport" result)"
e2e_eq "docker load ran here once" "1 load -i $new/tq_saas/skylar_linux_console_images.tar" \
  "$(lines "$rec/docker.local") $(cat "$rec/docker.local")"
e2e_eq "status.machines[]: local Loaded" "Loaded" "$(machine local result)"
e2e_eq "the converter ran twice (the s3 section carried over between)" 2 "$(lines "$rec/plan_client.calls")"
pc=$new/$pc_rel
kept=$(kubectl -n "$ns" get tqap ap -o jsonpath='{.status.folder}')/template.yaml.orig
e2e_check "the original template.yaml is kept" cmp -s "$kept" "$new/tq_saas/template.yaml.enc"
s3() { awk '/^s3:/{on=1; print; next} on && /^[^ #]/{on=0} on' "$1"; }
nos3() { awk '/^s3:/{on=1; next} on && /^[^ #]/{on=0} !on' "$1"; }
e2e_eq "template.yaml's s3 section is the old template's" "$(s3 "$root/tq_saas/darwin_template_abc123.yaml")" "$(s3 "$pc/template.yaml")"
e2e_check "the rest of template.yaml is byte for byte as it was" cmp -s <(nos3 "$kept") <(nos3 "$pc/template.yaml")
e2e_eq "the diff of template.yaml shows only s3 lines" \
  "$(printf '< region: cn-north-1\n< bucket_v2: tianqing\n< # the new layout, which the converter cannot fill from a 10.6 template\n> access_key: AKOLD\n> secret_key: SKOLD\n> endpoint: http://minio.default:9000' | sort)" \
  "$(diff "$kept" "$pc/template.yaml" | grep '^[<>]' | sed 's/^\([<>]\) */\1 /' | sort)"
for f in deploy-server.db third_party/ansible_inventory/hosts third_party/ansible_inventory/group_vars; do
  e2e_check "Gather: $f copied" cmp -s "$root/$pc_rel/$f" "$pc/$f"
done
e2e_check "Gather: plan_client made executable" test -x "$pc/plan_client"
e2e_check "nothing on the machine yet" test ! -e "$remote/$to/skylar_linux_console_images.tar"
e2e_eq "docker load did not run there" 0 "$(lines "$rec/docker.remote")"

kh "$known"
secret "wrong password"
bump 61m
check_state 60 ap "Blocked AuthFailed" "a wrong password: Blocked AuthFailed"
e2e_eq "status.machines[]: AuthFailed" AuthFailed "$(machine "127.0.0.1:$sport" result)"
e2e_check_fails "no secret in status or Events" bash -c "kubectl -n $ns get tqap ap -o json | grep -F 'wrong password'"
secret "$pw"
kubectl -n "$ns" patch tqap ap --type=merge -p "{\"spec\":{\"machines\":[\"127.0.0.1:$dead\"]}}" >/dev/null
check_state 60 ap "Blocked ConnectionRefused" "nothing listening: Blocked ConnectionRefused"
e2e_eq "status.machines[]: ConnectionRefused" ConnectionRefused "$(machine "127.0.0.1:$dead" result)"

# a connection dropped mid-transfer: every process of the connection killed
touch "$tmp/slow"
kubectl -n "$ns" patch tqap ap --type=merge -p "{\"spec\":{\"machines\":[\"127.0.0.1:$sport\"]}}" >/dev/null
part=$remote/$to/skylar_linux_console_images.tar.part
if e2e_eventually 60 bash -c "[ \$(stat -c %s '$part' 2>/dev/null || echo 0) -gt 1048576 ]"; then
  kill_below "$sshd_pid"
  e2e_ok "the upload started"
else
  e2e_not_ok "the upload started" "$(state ap)"
fi
check_state 60 ap "Blocked ConnectionDropped" "a connection dropped mid-transfer: Blocked ConnectionDropped"
e2e_check "no half-done state: no archive there (only its .part)" test ! -e "$remote/$to/skylar_linux_console_images.tar"
e2e_eq "docker load did not run there" 0 "$(lines "$rec/docker.remote")"

# kill -9 of the controller in the middle of the resumed copy: restarted, it
# goes on from the .part; nothing is loaded twice
before=$(stat -c %s "$part" 2>/dev/null || echo 0)
bump 62m
if e2e_eventually 60 bash -c "[ \$(stat -c %s '$part' 2>/dev/null || echo 0) -gt $((before + 1048576)) ]"; then
  up_stop ctl KILL
  e2e_ok "the copy resumed from the .part ($before bytes)"
else
  e2e_not_ok "the copy resumed from the .part ($before bytes)" "$(state ap)"
fi
kill_below "$sshd_pid"
rm -f "$tmp/slow"
start_ctl || e2e_not_ok "controller restarted"
check_state 120 ap "Failed FixsvcChecksumMismatch" "the upload resumes; then fixsvc.sh with a wrong md5: Failed FixsvcChecksumMismatch"
sum=$(sha256sum "$new/tq_saas/skylar_linux_console_images.tar" | cut -d' ' -f1)
e2e_eq "the archive arrived intact (sha256)" "$sum" "$(sha256sum "$remote/$to/skylar_linux_console_images.tar" | cut -d' ' -f1)"
e2e_eq "status.machines[]: its sha256" "$sum" "$(machine "127.0.0.1:$sport" sha256)"
e2e_eq "docker load ran there once, on that archive" "1 $sum" "$(lines "$rec/docker.remote") $(cat "$rec/docker.remote.sha" 2>/dev/null)"
e2e_eq "status.machines[]: Loaded, every byte sent" "Loaded $(stat -c %s "$new/tq_saas/skylar_linux_console_images.tar")" \
  "$(machine "127.0.0.1:$sport" result) $(machine "127.0.0.1:$sport" bytesSent)"
e2e_check "fixsvc.sh whose md5 does not match was never run" test ! -e "$rec/fixsvc.calls"
e2e_match "after kill -9 mid-copy the copy went on from its .part" "^archive sent, resumed from byte [1-9][0-9]* " \
  "$(machine "127.0.0.1:$sport" message)"
e2e_eq "docker load here still ran once" 1 "$(lines "$rec/docker.local")"

# the right md5, but a start marker without a result (a crash while it ran): not run twice
apfolder=$(kubectl -n "$ns" get tqap ap -o jsonpath='{.status.folder}')
touch "$apfolder/fixsvc.launched"
kubectl -n "$ns" patch tqap ap --type=merge -p "{\"spec\":{\"fixsvc\":{\"md5\":\"$fix_md5\"}}}" >/dev/null
check_state 60 ap "Blocked FixsvcOutcomeUnknown" "fixsvc.sh started before, its outcome not recorded: Blocked FixsvcOutcomeUnknown"
e2e_check "and it was not run again" test ! -e "$rec/fixsvc.calls"
# the marker removed: it runs (a copy in the request's folder), the Service gets 30083; kill -9 while the installer runs
# (the same md5 in capitals: a new generation, so the Blocked step is looked at again at once)
rm -f "$apfolder/fixsvc.launched"
kubectl -n "$ns" patch tqap ap --type=merge -p "{\"spec\":{\"fixsvc\":{\"md5\":\"${fix_md5^^}\"}}}" >/dev/null
if e2e_eventually 60 test -s "$rec/install.calls"; then e2e_ok "the installer started"
else e2e_not_ok "the installer started" "$(state ap)" "$(steps ap)"; fi
up_stop ctl KILL
e2e_eq "fixsvc.sh ran once" 1 "$(lines "$rec/fixsvc.calls")"
e2e_eq "its copy in the request's folder ran, its result recorded" "$fix_md5 exit 0" \
  "$(md5sum < "$apfolder/fixsvc.sh" | cut -d' ' -f1) $(cat "$apfolder/fixsvc.result" 2>/dev/null)"
e2e_match "proxy-pp has port 30083" '(^| )30083( |$)' "$(kubectl -n default get svc proxy-pp -o jsonpath='{.spec.ports[*].port}')"
cdnkept=$(ls "$tmp"/backups/*/darwin_update_template_*.before-cdn 2>/dev/null | head -n1)
staged=$new/tq_saas/darwin_update_template_20261205220000.yaml
e2e_eq "CdnSetting: only the darwincdn value changed" \
  '<   darwincdn: "darwin-cdn:8080"   # the cdn the consoles use|>   darwincdn: proxy-pp:8083   # the cdn the consoles use' \
  "$(diff "$cdnkept" "$staged" | grep '^[<>]' | paste -sd'|')"
e2e_check "Stage: darwin-client in tq_saas" cmp -s "$pc/darwin-client" "$new/tq_saas/darwin-client"
start_ctl || e2e_not_ok "controller restarted"
check_state 60 ap "Succeeded AccessPointUpgraded" "after kill -9 during Install: Succeeded"
e2e_eq "the installer ran once" 1 "$(lines "$rec/install.calls")"
e2e_match "with the converted template" "--data.source=local --execute.type=k8s --template.file=darwin_update_template_20261205220000.yaml" \
  "$(cat "$rec/install.calls")"
e2e_eq "no step redone: each ran once (attempts)" \
  "Extract=1 Gather=1 Decrypt=1 ConvertTemplate=1 Stage=1 Install=1" \
  "$(kubectl -n "$ns" get tqap ap -o json | jq -r '[.status.steps[] | select(.name|test("^(Extract|Gather|Decrypt|ConvertTemplate|Stage|Install)$")) | "\(.name)=\(.attempts // 0)"] | join(" ")')"
e2e_eq "status.launch: Succeeded" Succeeded "$(kubectl -n "$ns" get tqap ap -o jsonpath='{.status.launch.outcome}')"
e2e_eq "docker load ran once here and once there in all" "1 1" "$(lines "$rec/docker.local") $(lines "$rec/docker.remote")"

# a dry run: Validate only, and the plan
apply_ap dry "  dryRun: true
  machines: [\"127.0.0.1:$sport\"]"
check_state 60 dry "Succeeded DryRunComplete" "a dry run: Succeeded DryRunComplete"
e2e_eq "its plan: the loads, the Service check, the darwincdn edit, the installer" \
  "LoadImages:docker load:local LoadImages:copy and docker load:127.0.0.1:$sport ProxyService:check port 30083:Service default/proxy-pp CdnSetting:set web.darwincdn:darwin_update_template_<timestamp>.yaml Install:command:$new/tq_saas" \
  "$(kubectl -n "$ns" get tqap dry -o json | jq -r '[.status.plan[] | "\(.step):\(.action):\(.target)"] | join(" ")')"

# a second access point upgrade from a node package archive (the md5 its
# name ends with), proxy-pp already on 30083, no machines
rm -f "$rec/fixsvc.calls"
tar -cf "$tmp/pkg.tar" -C "$new" tq_paas tq_saas
arch=node-$to-$(md5sum "$tmp/pkg.tar" | cut -d' ' -f1).tar
mv "$tmp/pkg.tar" "$root/$arch"
PKG="{root: $root, archive: $arch, md5: 0123456789abcdef0123456789abcdef}" \
  apply_ap ap2 "  fixsvc: {path: $tmp/qax/fixsvc.sh, md5: $fix_md5}"
check_state 60 ap2 "Failed ArchiveChecksumMismatch" "an archive whose md5 is not spec.packages.md5: Failed ArchiveChecksumMismatch"
# and kill -9 of the controller while plan_client converts: the steps done
# before are not redone, ConvertTemplate runs again
touch "$rec/slow-convert"; rm -f "$rec/converting"
kubectl -n "$ns" patch tqap ap2 --type=merge -p '{"spec":{"packages":{"md5":""}}}' >/dev/null
if e2e_eventually 60 test -e "$rec/converting"; then up_stop ctl KILL; e2e_ok "killed while ConvertTemplate ran"
else e2e_not_ok "killed while ConvertTemplate ran" "$(steps ap2)"; fi
start_ctl || e2e_not_ok "controller restarted"
check_state 90 ap2 "Succeeded AccessPointUpgraded" "the md5 its name ends with: extracted; proxy-pp with 30083: Succeeded"
e2e_eq "after kill -9 in ConvertTemplate: Gather and Decrypt ran once (Extract twice: it had failed on the md5)" \
  "Extract=2 Gather=1 Decrypt=1" \
  "$(kubectl -n "$ns" get tqap ap2 -o json | jq -r '[.status.steps[] | select(.name|test("^(Extract|Gather|Decrypt)$")) | "\(.name)=\(.attempts // 0)"] | join(" ")')"
e2e_match "Extract checked that md5" "^md5 [0-9a-f]{32} checked; extracted into $root/$to$" \
  "$(kubectl -n "$ns" get tqap ap2 -o json | jq -r '.status.steps[] | select(.name=="Extract") | .message')"
e2e_check "and fixsvc.sh did not run" test ! -e "$rec/fixsvc.calls"
# below 10.3.0.3201: Blocked, nothing touched
mkdir -p "$tmp/legacy" && touch "$tmp/legacy/docker-compose.yml"
kubectl apply -f - >/dev/null <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingAccessPointUpgrade
metadata: {name: old, namespace: $ns}
spec: {fromVersion: 10.3.0.3100, toVersion: $to, backupDir: $tmp/backups, legacy: {installDir: $tmp/legacy}}
EOF
check_state 60 old "Blocked LegacyDockerAccessPoint" "below 10.3.0.3201: Blocked LegacyDockerAccessPoint"
e2e_check "the legacy install folder is untouched" test -f "$tmp/legacy/docker-compose.yml"
e2e_eq "no docker rm, no docker ps" "" "$(grep -E '^(rm|ps)' "$rec/docker.local")"
# confirmed: containers listed and removed, the folder (vendor layout) removed,
# docker restarted, Blocked RedeployRequired
printf '#!/bin/sh\necho "$*" >> %s/systemctl\n' "$rec" > "$tmp/bin/systemctl"; chmod 0755 "$tmp/bin/systemctl"
kubectl -n "$ns" patch tqap old --type=merge -p '{"spec":{"legacy":{"confirmUninstall":true}}}' >/dev/null
check_state 60 old "Blocked RedeployRequired" "confirmUninstall: Blocked RedeployRequired"
oldfolder=$(kubectl -n "$ns" get tqap old -o jsonpath='{.status.folder}')
e2e_eq "the container list is kept" "CONTAINER ID   IMAGE|c1   old/console|c2   old/proxy" "$(paste -sd'|' "$oldfolder/containers.txt")"
e2e_eq "docker rm -f of every container" "rm -f c1c1c1c1c1c1 c2c2c2c2c2c2" "$(grep '^rm' "$rec/docker.local")"
e2e_check "the install folder (vendor layout) is removed" test ! -e "$tmp/legacy"
e2e_eq "docker restarted once" "restart docker" "$(cat "$rec/systemctl")"
echo "# test_accesspoint took $(( $(date +%s) - T0 )) s"
e2e_summary
exit $?
