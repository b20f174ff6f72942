#!/usr/bin/env bash
# The controller binary on bad configuration: each case must end with ONE
# line on stderr naming the file or server and the problem, a non-zero exit,
# no crash (exit < 128) and no hang; --help and --version work; with a good
# configuration it starts, reports itself ready and stops cleanly on SIGTERM.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
e2e_require_cluster
BIN=${TQU_BIN:?TQU_BIN is set by tests/run.sh}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_bad DESC REGEX ARGS...: one stderr line matching REGEX, exit 1..127.
run_bad() {
  local desc=$1 re=$2 rc lines
  shift 2
  timeout 60 "$BIN" --health-addr= "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  lines=$(grep -c . "$tmp/err")
  if [ "$rc" -ge 1 ] && [ "$rc" -lt 124 ] && [ "$lines" -eq 1 ] && grep -Eq -- "$re" "$tmp/err"; then
    e2e_ok "$desc"
  else
    e2e_not_ok "$desc" "exit $rc, $lines stderr lines, want /$re/" "$(cat "$tmp/err")"
  fi
}

admin=$TQU_KUBECONFIG_ADMIN
server=$TQU_API_SERVER

run_bad "missing kubeconfig names the file" "$tmp/nope.kubeconfig.*(No such file|not found|does not exist)" \
  --kubeconfig "$tmp/nope.kubeconfig"
run_bad "unknown context names it" "context \"ghost\" not found" --kubeconfig "$admin" --context ghost
printf 'apiVersion: v1\nclusters: [\n  - name: x\n   bad: indent\n' > "$tmp/broken.yaml"
run_bad "malformed YAML names the file and line" "$tmp/broken.yaml.*line [0-9]+" --kubeconfig "$tmp/broken.yaml"
sed "s#client-certificate: .*#client-certificate: $tmp/missing-cert.pem#" "$admin" > "$tmp/badcert.kubeconfig"
run_bad "unreadable client certificate names the certificate file" "$tmp/missing-cert.pem" \
  --kubeconfig "$tmp/badcert.kubeconfig"
# an unreachable server: a loopback port nobody listens on
port=$(( (RANDOM % 20000) + 30000 )); while ss -Htln | grep -q ":$port "; do port=$((port + 1)); done
sed "s#server: .*#server: https://127.0.0.1:$port#" "$admin" > "$tmp/unreachable.kubeconfig"
run_bad "unreachable server names the server" "cannot reach the API server https://127.0.0.1:$port" \
  --kubeconfig "$tmp/unreachable.kubeconfig"
# a wrong CA: a fresh self-signed CA that signed nothing here
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other.key" -out "$tmp/other-ca.crt" \
  -days 1 -subj /CN=other-ca >/dev/null 2>&1
sed "s#certificate-authority: .*#certificate-authority: $tmp/other-ca.crt#" "$admin" > "$tmp/wrongca.kubeconfig"
run_bad "wrong CA is a TLS error naming the server" "cannot reach the API server $server.*(TLS|certificate|SSL)" \
  --kubeconfig "$tmp/wrongca.kubeconfig"
run_bad "unknown flag" "unknown flag: --bogus" --bogus
run_bad "bad log level" "invalid value \"loud\" for --log-level" --log-level loud

# the CRD missing: a fresh namespace-less check against a server without it
# is covered by deleting the CRD last (below).

out=$("$BIN" --help 2>&1); rc=$?
e2e_eq "--help exits 0" 0 "$rc"
e2e_match "--help lists --kubeconfig with its default" '--kubeconfig string' "$out"
e2e_match "--help lists --exec-prefix" '--exec-prefix string' "$out"
out=$("$BIN" --version 2>&1); rc=$?
e2e_eq "--version exits 0" 0 "$rc"
e2e_match "--version prints the name and version" '^tianqing-upgrade-controller [^ ]+$' "$out"

# a good configuration: starts, serves /readyz, stops on SIGTERM with exit 0
"$BIN" --kubeconfig "$admin" --health-addr 127.0.0.1:0 --log-format json >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
if e2e_eventually 20 grep -q '"msg":"serving /healthz' "$tmp/run.err"; then
  hport=$(sed -n 's/.*"msg":"serving \/healthz[^}]*"port":"\([0-9]*\)".*/\1/p' "$tmp/run.err" | head -n1)
  if e2e_eventually 20 curl -fsS "http://127.0.0.1:$hport/readyz"; then e2e_ok "ready once the cache is synced"
  else e2e_not_ok "ready once the cache is synced" "$(cat "$tmp/run.err")"; fi
  e2e_check "/healthz answers" curl -fsS "http://127.0.0.1:$hport/healthz"
else
  e2e_not_ok "controller starts and serves health" "$(cat "$tmp/run.err")"
fi
kill -TERM "$pid"
t0=$(date +%s)
wait "$pid"; rc=$?
e2e_eq "SIGTERM: clean exit 0" 0 "$rc"
e2e_check "SIGTERM: exit within 30 s" test $(( $(date +%s) - t0 )) -le 30
e2e_match "logs are JSON lines" '^\{"ts":"[^"]+","level":"info","msg":"stopped"\}$' "$(tail -n1 "$tmp/run.err")"

# without the CRD: one line saying so, with the remedy
kubectl get crd tianqingupgrades.upgrade.tianqing.io -o yaml > "$tmp/crd.yaml"
# only TianqingUpgrade's goes (the group is still served by the others)
kubectl delete crd tianqingupgrades.upgrade.tianqing.io --wait=true >/dev/null
e2e_eventually 20 bash -c "! kubectl get --raw /apis/upgrade.tianqing.io/v1alpha1 | grep -q '\"tianqingupgrades\"'"
run_bad "missing CRD (the group still served) is named with the remedy" \
  "TianqingUpgrade CRD .* is not installed on $server: kubectl apply -f crds/" --kubeconfig "$admin"
# every kind of the group goes, so the group itself is no longer served
kubectl delete crd tianqingtunings.upgrade.tianqing.io tianqingrestores.upgrade.tianqing.io \
  tianqingaccesspointupgrades.upgrade.tianqing.io --wait=true >/dev/null
e2e_eventually 20 bash -c "! kubectl get --raw /apis/upgrade.tianqing.io/v1alpha1 >/dev/null 2>&1"
run_bad "missing CRD is named with the remedy" "TianqingUpgrade CRD .* is not installed on $server: kubectl apply -f crds/" \
  --kubeconfig "$admin"
kubectl apply -f "$here/../../crds/" >/dev/null
kubectl wait --for=condition=Established crd/tianqingupgrades.upgrade.tianqing.io \
  crd/tianqingtunings.upgrade.tianqing.io crd/tianqingrestores.upgrade.tianqing.io \
  crd/tianqingaccesspointupgrades.upgrade.tianqing.io --timeout=60s >/dev/null

e2e_summary
exit $?
