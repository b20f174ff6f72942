# shellcheck shell=bash
# tmp comes from the sourcing script:
# shellcheck disable=SC2154
# Helpers for the TianqingTuning fault scripts (source after lib.sh and
# upgrade_lib.sh; $tmp is the script's temporary folder).
#
#   tt_etcd_start [tls]        a second etcd (Debian's etcd-server) on free
#                              loopback ports, data in $tmp/etcd; with tls:
#                              https with $tmp/pki/server.crt signed by
#                              $tmp/pki/ca.crt ($tmp/pki/other-ca.crt: a CA
#                              that did not sign it). Sets TT_URL, TT_PID.
#   tt_etcd_stop / tt_etcd_restart   kill -9 it / start it again (same
#                              data, same port)
#   ec ARGS...                 etcdctl against it
#   tt_get KEY / tt_val KEY    a key's value ("" / "-" when absent)
#   tt_is KEY VALUE            tt_val is VALUE (for e2e_eventually)
#   tt_keys                    "enable max styx cdnmax cdndisk" (tt_val each)
#   tt_deploy NS NAME CONTAINER-JSON...   a Deployment (kubectl apply)
#   tt_args NS NAME [INDEX]    a container's args as compact JSON
#   tt_apply NS NAME [EXTRA]   a TianqingTuning: global, styx, edge2, cdn in
#                              $TT_APPS, etcd $TT_URL (EXTRA: lines under spec:)
#   tt_state NS NAME           "<phase> <Stalled reason>" (or Ready's reason)
#   tt_wait_state SECONDS NS NAME STATE   until tt_state is STATE

TT_PID=
TT_URL=
TT_TLS=
TT_ARGS=()

tt_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tt_pki() {
  local d=$tmp/pki
  mkdir -p "$d"
  for ca in ca other-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tt-$ca" \
      -keyout "$d/$ca.key" -out "$d/$ca.crt" 2>/dev/null || return 1
  done
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" \
    -out "$d/server.csr" 2>/dev/null || return 1
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null
}

tt_etcd_run() {
  /usr/bin/etcd "${TT_ARGS[@]}" >>"$tmp/etcd.log" 2>&1 &
  TT_PID=$!
  e2e_eventually 20 ec endpoint health
}

tt_etcd_start() {
  local cport pport scheme=http tls=()
  cport=$(tt_free_port) pport=$(tt_free_port)
  if [ "${1:-}" = tls ]; then
    tt_pki || return 1
    scheme=https TT_TLS=1
    tls=(--cert-file "$tmp/pki/server.crt" --key-file "$tmp/pki/server.key")
  fi
  TT_URL=$scheme://127.0.0.1:$cport
  TT_ARGS=(--name tt --data-dir "$tmp/etcd" --listen-client-urls "$TT_URL" --advertise-client-urls "$TT_URL"
           --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport"
           --initial-cluster "tt=http://127.0.0.1:$pport" --log-level error "${tls[@]}")
  tt_etcd_run
}

tt_etcd_stop() {
  [ -n "$TT_PID" ] || return 0
  kill -KILL "$TT_PID" 2>/dev/null
  wait "$TT_PID" 2>/dev/null
  TT_PID=
}

tt_etcd_restart() { tt_etcd_run; }

# the control plane's own etcd settings are in the environment: not these
ec() {
  local tls=()
  [ -n "$TT_TLS" ] && tls=(--cacert "$tmp/pki/ca.crt")
  env -u ETCDCTL_ENDPOINTS -u ETCDCTL_CACERT -u ETCDCTL_CERT -u ETCDCTL_KEY ETCDCTL_API=3 \
    etcdctl --endpoints "$TT_URL" "${tls[@]}" --command-timeout=5s "$@"
}
tt_get() { ec get "$1" --print-value-only 2>/dev/null; }
# etcdctl 3.4 has no --count-only: the count of the JSON answer
tt_has() { [ "$(ec get "$1" -w json 2>/dev/null | jq '.count // 0')" = 1 ]; }
tt_val() { if tt_has "$1"; then tt_get "$1"; else echo -; fi; }
tt_is() { [ "$(tt_val "$1")" = "$2" ]; }
tt_keys() {
  echo "$(tt_val da.skylar.rate_limit.enable) $(tt_val da.skylar.rate_limit.max_request_per_unit)" \
       "$(tt_val styx.rate_limit.max_request_per_unit) $(tt_val da.skylar.project.cdn.max_request)" \
       "$(tt_val da.skylar.project.cdn.disk_space)"
}

tt_deploy() {
  local ns=$1 name=$2 cs
  shift 2
  cs=$(printf '%s\n' "$@" | jq -s -c .)
  kubectl apply -f - >/dev/null <<EOF
{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "$name", "namespace": "$ns"},
 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "$name"}},
  "template": {"metadata": {"labels": {"app": "$name"}}, "spec": {"containers": $cs}}}}
EOF
}
tt_args() { kubectl -n "$1" get deploy "$2" -o json 2>/dev/null | jq -c ".spec.template.spec.containers[${3:-0}].args"; }

tt_apply() {
  local sec=
  [ -n "${TT_SECRET:-}" ] && sec=", tlsSecretRef: {name: $TT_SECRET}"
  kubectl apply -f - <<EOF
apiVersion: upgrade.tianqing.io/v1alpha1
kind: TianqingTuning
metadata: {name: $2, namespace: $1}
spec:
  etcd: {endpoints: ["${TT_ENDPOINT:-$TT_URL}"]$sec}
  rateLimit:
    global: {enabled: true, maxRequestPerUnit: 500}
    services:
    - {namespace: $TT_APPS, deployment: styx-file-assessment-go, maxRequestPerUnit: 300}
  edge2: {namespace: $TT_APPS, deployment: edge2, maxClients: 1000}
  cdn: {maxRequest: 3000, diskSpace: 20G}
  backupDir: $tmp/backups
${3:-}
EOF
}

tt_state() {
  kubectl -n "$1" get tqt "$2" -o json 2>/dev/null | jq -r '"\(.status.phase) \([.status.conditions[]? |
    select(.type=="Stalled" and .status=="True") | .reason][0] // [.status.conditions[]? |
    select(.type=="Ready") | .reason][0] // "")"'
}
tt_at_state() { [ "$(tt_state "$1" "$2")" = "$3" ]; }
tt_wait_state() { e2e_eventually "$1" tt_at_state "$2" "$3" "$4"; }
