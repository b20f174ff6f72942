#!/usr/bin/env bash
# A real control plane for tests: etcd 3.4 (Debian's etcd-server) and
# kube-apiserver 1.20.2 (scripts/build-kube-apiserver.sh) on free loopback
# ports, TLS verified everywhere, all state inside one folder DIR.
#
#   cluster.sh up DIR                 certificates, etcd, kube-apiserver, kubeconfigs,
#                                     RBAC for the test identities, crds/*.yaml; writes DIR/env
#   cluster.sh down DIR               stop kube-apiserver then etcd (SIGTERM, SIGKILL after a grace)
#   cluster.sh stop-apiserver DIR     stop kube-apiserver only (etcd keeps the data)
#   cluster.sh start-apiserver DIR    start it again, same port and flags; waits for /readyz
#   cluster.sh restart-apiserver DIR  stop + start
#   cluster.sh status DIR             what runs; exit 0 only if etcd is healthy and the API server ready
#   cluster.sh issue-cert DIR NAME CN [GROUP...]   a client certificate (user CN, groups GROUP) signed by
#                                     the cluster's CA: DIR/NAME.{crt,key,kubeconfig}; prints the kubeconfig
#
# Process lifetime. Every server runs under a small "keeper" (this script,
# `_keep`), which is its parent and starts it with `setpriv --pdeathsig KILL`,
# so the server dies with its keeper whatever kills the keeper. A keeper
# stops its server on SIGTERM/SIGINT/SIGHUP (SIGTERM, then SIGKILL after
# TQU_STOP_GRACE seconds). When `up` is given an owner lock
# (TQU_CLUSTER_OWNER_LOCK=FILE: with-cluster.sh holds an exclusive flock on FILE
# for its whole life), each keeper also runs `flock -s FILE kill -TERM <keeper>`:
# the kernel releases the lock when the owner exits for any reason, SIGKILL
# included, and the keeper then stops its server. No polling. The lock is
# recorded in DIR/cluster.conf, so servers started later by start-apiserver are
# tied to the same owner. Without an owner lock (a cluster started by hand) the
# servers run until `down`. Pids are recorded in DIR and `down`
# kills by pid, after checking that the pid's command line names DIR.
#
# Environment: TQU_CLUSTER_OWNER_LOCK (see above; read by `up` only),
# TQU_KUBE_APISERVER (binary to use instead of building one),
# TQU_READY_TIMEOUT (seconds to wait for /readyz, default 60),
# TQU_STOP_GRACE (seconds between SIGTERM and SIGKILL, default 5).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
self=$here/cluster.sh
ready_timeout=${TQU_READY_TIMEOUT:-60}
stop_grace=${TQU_STOP_GRACE:-5}

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
  sed -n '5,14s/^#   //p' "$self" >&2
  exit 2
}

# ---------------------------------------------------------------- processes

# proc_alive PID: the process exists and is not a zombie.
proc_alive() {
  local st
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# proc_ours PID: alive and its command line names this cluster's DIR (guards
# against a recycled pid).
proc_ours() {
  proc_alive "$1" || return 1
  tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$dir"
}

readpid() { if [ -s "$1" ]; then cat "$1" 2>/dev/null || true; fi; }

# running NAME: the server NAME (etcd, apiserver) of this DIR is running.
running() { proc_ours "$(readpid "$dir/$1.pid")"; }

# stop NAME: SIGTERM the keeper (which stops the server), wait, then SIGKILL
# whatever is left. Returns when neither process of ours is alive.
stop() {
  local name=$1 kp sp i
  kp=$(readpid "$dir/$name.keeper.pid")
  sp=$(readpid "$dir/$name.pid")
  proc_ours "$kp" || kp=
  proc_ours "$sp" || sp=
  if [ -z "$kp$sp" ]; then rm -f "$dir/$name.pid" "$dir/$name.keeper.pid"; return 0; fi
  if [ -n "$kp" ]; then kill -TERM "$kp" 2>/dev/null || true
  else kill -TERM "$sp" 2>/dev/null || true; fi
  for ((i = 0; i < (stop_grace + 3) * 20; i++)); do
    proc_ours "$kp" || proc_ours "$sp" || break
    sleep 0.05
  done
  for p in $sp $kp; do
    if proc_ours "$p"; then log "$name: pid $p still alive, SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
  done
  for ((i = 0; i < 100; i++)); do
    proc_ours "$kp" || proc_ours "$sp" || break
    sleep 0.05
  done
  if proc_ours "$kp" || proc_ours "$sp"; then log "$name: could not stop pid(s) $kp $sp"; return 1; fi
  rm -f "$dir/$name.pid" "$dir/$name.keeper.pid"
}

# launch NAME ARGV...: start ARGV under a keeper, detached from our session,
# stdio to DIR/NAME.log; waits until the server's pid is recorded.
launch() {
  local name=$1 i; shift
  rm -f "$dir/$name.pid" "$dir/$name.keeper.pid"
  setsid "$self" _keep "$dir" "$name" "${owner_lock:-}" -- "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  for ((i = 0; i < 200; i++)); do
    [ -s "$dir/$name.pid" ] && return 0
    sleep 0.01
  done
  die "$name: keeper did not start; see $dir/$name.log"
}

# _keep DIR NAME OWNER-LOCK -- ARGV...: the keeper (see the header).
keep() {
  local name=$2 lock=$3 fd child watcher='' rc
  shift 4
  # Hold no descriptor of whoever started us (an owner lock, a pipe a caller
  # waits on): only stdio, which launch() redirected.
  for fd in /proc/"$$"/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" != 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
  echo $$ > "$dir/$name.keeper.pid"
  setpriv --pdeathsig KILL -- "$@" &
  child=$!
  echo "$child" > "$dir/$name.pid.tmp" && mv "$dir/$name.pid.tmp" "$dir/$name.pid"
  echo "[keeper $$] started $name: pid $child"

  # shellcheck disable=SC2317  # a trap handler
  shutdown() {
    local i
    trap '' TERM INT HUP
    echo "[keeper $$] stopping $name (pid $child): SIGTERM"
    kill -TERM "$child" 2>/dev/null || true
    for ((i = 0; i < stop_grace * 20; i++)); do
      proc_alive "$child" || break
      sleep 0.05
    done
    if proc_alive "$child"; then
      echo "[keeper $$] $name still running after ${stop_grace}s: SIGKILL"
      kill -KILL "$child" 2>/dev/null || true
    fi
    wait "$child" 2>/dev/null || true
    [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
    echo "[keeper $$] $name stopped"
    exit 0
  }
  trap shutdown TERM INT HUP

  if [ -n "$lock" ]; then
    # Fires when the owner (with-cluster.sh) is gone, however it ended.
    setpriv --pdeathsig KILL -- flock -s "$lock" kill -TERM $$ </dev/null &
    watcher=$!
  fi
  set +e
  wait "$child"; rc=$?
  echo "[keeper $$] $name exited by itself with status $rc"
  [ -z "$watcher" ] || kill "$watcher" 2>/dev/null
  exit "$rc"
}

# ---------------------------------------------------------------- ports

listening_ports() { ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u; }

# free_port EXCLUDE...: a random port in 20000-60000 nobody listens on.
free_port() {
  local used p i
  used=" $(listening_ports | tr '\n' ' ') $* "
  for ((i = 0; i < 100; i++)); do
    p=$(shuf -i 20000-60000 -n 1)
    case $used in *" $p "*) continue ;; esac
    echo "$p"; return 0
  done
  die "no free port found"
}

port_free() { ! listening_ports | grep -qx "$1"; }

# ---------------------------------------------------------------- files

# cert NAME SUBJECT EKU [SAN]: an EC P-256 key and a certificate signed by the CA.
cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
  [ -z "$san" ] || ext="$ext
subjectAltName=$san"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -extfile <(echo "$ext") \
    -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr"
  chmod 600 "$dir/$name.key"
}

make_pki() {
  [ -s "$dir/ca.crt" ] && [ -s "$dir/sa.pub" ] && [ -s "$dir/tokens.csv" ] && return 0
  local t; t=$(now)
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 -subj "/CN=tqu-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$dir/ca.key"
  cert apiserver "/CN=kube-apiserver" serverAuth "IP:127.0.0.1,DNS:localhost"
  cert etcd "/CN=etcd" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
  cert etcd-client "/CN=tqu-etcd-client" clientAuth
  cert admin "/O=system:masters/CN=tqu-admin" clientAuth
  cert cert-user "/O=tqu-testers/CN=tqu-cert-user" clientAuth
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/sa.key" 2>/dev/null
  openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  chmod 600 "$dir/sa.key"
  # token,user,uid,"groups"
  printf '%s,tqu-token-user,tqu-token-user,"tqu-testers"\n' "$(openssl rand -hex 32)" > "$dir/tokens.csv"
  chmod 600 "$dir/tokens.csv"
  log "certificates in $(elapsed "$t")s"
}

write_audit_policy() {
  cat > "$dir/audit-policy.yaml" <<'EOF'
# Writes at Metadata level (who changed what, when); reads not at all.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [get, list, watch]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
EOF
}

# kubeconfig FILE USER-NAME USER-YAML
kubeconfig() {
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tqu
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority: $dir/ca.crt
users:
- name: $2
  user:
$3
contexts:
- name: $2@tqu
  context: {cluster: tqu, user: $2}
current-context: $2@tqu
EOF
  chmod 600 "$1"
}

write_client_files() {
  local token
  token=$(cut -d, -f1 "$dir/tokens.csv")
  kubeconfig "$dir/admin.kubeconfig" tqu-admin "    client-certificate: $dir/admin.crt
    client-key: $dir/admin.key"
  kubeconfig "$dir/token.kubeconfig" tqu-token-user "    token: $token"
  kubeconfig "$dir/cert.kubeconfig" tqu-cert-user "    client-certificate: $dir/cert-user.crt
    client-key: $dir/cert-user.key"
  cat > "$dir/env.tmp" <<EOF
export TQU_CLUSTER_DIR='$dir'
export TQU_CLUSTER_SH='$self'
export TQU_API_SERVER='https://127.0.0.1:$apiserver_port'
export TQU_CA_FILE='$dir/ca.crt'
export TQU_KUBECONFIG_ADMIN='$dir/admin.kubeconfig'
export TQU_KUBECONFIG_TOKEN='$dir/token.kubeconfig'
export TQU_KUBECONFIG_CERT='$dir/cert.kubeconfig'
export TQU_ADMIN_CERT='$dir/admin.crt'
export TQU_ADMIN_KEY='$dir/admin.key'
export TQU_CERT_USER_CERT='$dir/cert-user.crt'
export TQU_CERT_USER_KEY='$dir/cert-user.key'
export TQU_TOKEN='$token'
export TQU_ETCD_ENDPOINT='https://127.0.0.1:$etcd_client_port'
export TQU_AUDIT_LOG='$dir/audit.log'
export KUBECONFIG='$dir/admin.kubeconfig'
export KUBECACHEDIR='$dir/kube-cache'
export ETCDCTL_API=3
export ETCDCTL_ENDPOINTS='https://127.0.0.1:$etcd_client_port'
export ETCDCTL_CACERT='$dir/ca.crt'
export ETCDCTL_CERT='$dir/etcd-client.crt'
export ETCDCTL_KEY='$dir/etcd-client.key'
EOF
  mv "$dir/env.tmp" "$dir/env"
}

load_conf() {
  [ -s "$dir/cluster.conf" ] || die "$dir is not a cluster folder (no cluster.conf); run up first"
  # shellcheck disable=SC1091
  . "$dir/cluster.conf"
}

save_conf() {
  cat > "$dir/cluster.conf" <<EOF
etcd_client_port=$etcd_client_port
etcd_peer_port=$etcd_peer_port
apiserver_port=$apiserver_port
apiserver_bin='$apiserver_bin'
owner_lock='$owner_lock'
EOF
}

# ---------------------------------------------------------------- servers

start_etcd() {
  local t i
  t=$(now)
  launch etcd etcd --name tqu --data-dir "$dir/etcd" \
    --listen-client-urls "https://127.0.0.1:$etcd_client_port" \
    --advertise-client-urls "https://127.0.0.1:$etcd_client_port" \
    --listen-peer-urls "https://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "https://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "tqu=https://127.0.0.1:$etcd_peer_port" \
    --initial-cluster-state new --initial-cluster-token "tqu-$(basename "$dir")" \
    --cert-file "$dir/etcd.crt" --key-file "$dir/etcd.key" \
    --trusted-ca-file "$dir/ca.crt" --client-cert-auth \
    --peer-cert-file "$dir/etcd.crt" --peer-key-file "$dir/etcd.key" \
    --peer-trusted-ca-file "$dir/ca.crt" --peer-client-cert-auth \
    --logger zap --log-outputs stderr
  for ((i = 0; i < 300; i++)); do
    if curl -sf --max-time 2 --cacert "$dir/ca.crt" --cert "$dir/etcd-client.crt" \
         --key "$dir/etcd-client.key" "https://127.0.0.1:$etcd_client_port/health" 2>/dev/null \
         | grep -q '"health":"true"'; then
      log "etcd healthy on 127.0.0.1:$etcd_client_port in $(elapsed "$t")s"
      return 0
    fi
    running etcd || { bind_error etcd && return 2; fail_log etcd "etcd exited"; }
    sleep 0.1
  done
  fail_log etcd "etcd not healthy within 30s"
}

# --allow-privileged=true as kubeadm and k3s set it: manifests/deployment.yaml
# is a privileged pod, and test_rbac.sh has the server dry-run it.
apiserver_args() {
  printf '%s\n' "$apiserver_bin" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    "--secure-port=$apiserver_port" --insecure-port=0 \
    "--etcd-servers=https://127.0.0.1:$etcd_client_port" \
    "--etcd-cafile=$dir/ca.crt" "--etcd-certfile=$dir/etcd-client.crt" "--etcd-keyfile=$dir/etcd-client.key" \
    "--tls-cert-file=$dir/apiserver.crt" "--tls-private-key-file=$dir/apiserver.key" \
    "--client-ca-file=$dir/ca.crt" "--token-auth-file=$dir/tokens.csv" \
    --authorization-mode=RBAC \
    --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    "--service-account-key-file=$dir/sa.pub" "--service-account-signing-key-file=$dir/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.0.0.0/24 \
    "--cert-dir=$dir/apiserver-certs" \
    "--audit-log-path=$dir/audit.log" --audit-log-format=json \
    "--audit-policy-file=$dir/audit-policy.yaml" --audit-log-mode=blocking \
    --audit-log-maxsize=20 --audit-log-maxbackup=2 \
    --endpoint-reconciler-type=none \
    --profiling=false --v=1
}

start_apiserver() {
  local t args
  t=$(now)
  mapfile -t args < <(apiserver_args)
  launch apiserver "${args[@]}"
  local deadline=$(( $(date +%s) + ready_timeout ))
  while :; do
    if curl -sf --max-time 2 --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" \
         "https://127.0.0.1:$apiserver_port/readyz" >/dev/null 2>&1; then
      log "kube-apiserver ready on https://127.0.0.1:$apiserver_port in $(elapsed "$t")s"
      return 0
    fi
    running apiserver || { bind_error apiserver && return 2; fail_log apiserver "kube-apiserver exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || fail_log apiserver "kube-apiserver not ready within ${ready_timeout}s"
    sleep 0.1
  done
}

bind_error() { tail -n 50 "$dir/$1.log" 2>/dev/null | grep -q 'address already in use'; }

fail_log() {
  echo "cluster: $2; last lines of $dir/$1.log:" >&2
  tail -n 30 "$dir/$1.log" >&2 || true
  exit 1
}

# kubectl as the admin, with a discovery cache private to this cluster.
kc() { KUBECACHEDIR="$dir/kube-cache" kubectl --kubeconfig "$dir/admin.kubeconfig" "$@"; }

load_crds() {
  local t crds=() f names
  t=$(now)
  kc apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tqu-testers-cluster-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: tqu-testers}
EOF
  for f in "$root"/crds/*.yaml; do [ -e "$f" ] && crds+=(-f "$f"); done
  if [ ${#crds[@]} -eq 0 ]; then log "no crds/*.yaml to load"; return 0; fi
  names=$(kc apply "${crds[@]}" -o name)
  # shellcheck disable=SC2086
  kc wait --for=condition=Established --timeout=30s $names >/dev/null
  # Established comes a moment before discovery lists the resource: wait for
  # discovery too, so the first `kubectl get` of a test never races it.
  local n gvp deadline=$(( $(date +%s) + 30 ))
  for n in $names; do
    gvp=$(kc get "$n" -o jsonpath='{.spec.group}/{.spec.versions[?(@.storage==true)].name} {.spec.names.plural}')
    until kc get --raw "/apis/${gvp%% *}" 2>/dev/null | grep -q "\"name\":\"${gvp##* }\""; do
      [ "$(date +%s)" -lt "$deadline" ] || die "${n#*/} not in discovery within 30s"
      sleep 0.1
    done
  done
  log "RBAC and $(echo "$names" | wc -w) CRD(s) established in $(elapsed "$t")s"
}

# ---------------------------------------------------------------- commands

up_ok=0 bpid='' upwatch=''
cmd_up() {
  local t _ rc
  t=$(now)
  mkdir -p "$1"
  dir=$(cd "$1" && pwd -P)
  if running etcd || running apiserver; then die "a cluster is already running in $dir (down it first)"; fi
  # shellcheck disable=SC2317
  on_exit() {
    [ -z "$bpid" ] || kill -TERM -- "-$bpid" 2>/dev/null || true
    [ -z "$upwatch" ] || kill "$upwatch" 2>/dev/null || true
    if [ "$up_ok" != 1 ]; then stop apiserver || true; stop etcd || true; fi
  }
  trap on_exit EXIT
  trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP
  owner_lock=${TQU_CLUSTER_OWNER_LOCK:-}
  if [ -n "$owner_lock" ]; then
    [ -e "$owner_lock" ] || die "owner lock $owner_lock does not exist"
    # An owner that dies while we are still coming up stops us too.
    setpriv --pdeathsig KILL -- flock -s "$owner_lock" kill -TERM $$ </dev/null >/dev/null 2>&1 &
    upwatch=$!
  fi

  if [ -n "${TQU_KUBE_APISERVER:-}" ]; then
    apiserver_bin=$TQU_KUBE_APISERVER
  else
    # In its own process group, in the background: a signal to us is handled
    # at once and takes the build (make, go) down with us.
    setsid bash "$root/scripts/build-kube-apiserver.sh" > "$dir/.apiserver-bin" &
    bpid=$!
    wait "$bpid" || die "scripts/build-kube-apiserver.sh failed"
    bpid=
    apiserver_bin=$(tail -n 1 "$dir/.apiserver-bin"); rm -f "$dir/.apiserver-bin"
  fi
  [ -x "$apiserver_bin" ] || die "no kube-apiserver binary at '$apiserver_bin'"

  make_pki
  write_audit_policy
  mkdir -p "$dir/apiserver-certs" "$dir/kube-cache"

  # Ports: keep those of an earlier run of this DIR while free, else new ones.
  etcd_client_port='' etcd_peer_port='' apiserver_port=''
  if [ -s "$dir/cluster.conf" ]; then
    eval "$(grep -E '^(etcd_client_port|etcd_peer_port|apiserver_port)=[0-9]*$' "$dir/cluster.conf")"
  fi
  for _ in 1 2 3 4 5; do
    if [ -z "$etcd_client_port" ] || ! port_free "$etcd_client_port"; then etcd_client_port=$(free_port "$etcd_peer_port" "$apiserver_port"); fi
    if [ -z "$etcd_peer_port" ] || ! port_free "$etcd_peer_port"; then etcd_peer_port=$(free_port "$etcd_client_port" "$apiserver_port"); fi
    rc=0; start_etcd || rc=$?
    [ "$rc" = 2 ] || break
    log "etcd: port taken meanwhile, picking others"; stop etcd; etcd_client_port='' etcd_peer_port=''
  done
  [ "$rc" = 0 ] || die "etcd did not start"
  for _ in 1 2 3 4 5; do
    if [ -z "$apiserver_port" ] || ! port_free "$apiserver_port"; then apiserver_port=$(free_port "$etcd_client_port" "$etcd_peer_port"); fi
    save_conf
    rc=0; start_apiserver || rc=$?
    [ "$rc" = 2 ] || break
    log "kube-apiserver: port taken meanwhile, picking another"; stop apiserver; apiserver_port=''
  done
  [ "$rc" = 0 ] || die "kube-apiserver did not start"
  write_client_files
  load_crds
  up_ok=1
  log "up in $(elapsed "$t")s: https://127.0.0.1:$apiserver_port; source $dir/env"
}

cmd_down() {
  [ -d "$1" ] || { log "no folder $1: nothing to stop"; return 0; }
  dir=$(cd "$1" && pwd -P)
  local rc=0
  stop apiserver || rc=1
  stop etcd || rc=1
  return $rc
}

cmd_stop_apiserver() { dir=$(cd "$1" && pwd -P); load_conf; stop apiserver; }

cmd_start_apiserver() {
  dir=$(cd "$1" && pwd -P); load_conf
  running etcd || die "etcd is not running in $dir (use up)"
  if running apiserver; then log "kube-apiserver already running"; return 0; fi
  port_free "$apiserver_port" || die "port $apiserver_port is taken by another process"
  local rc=0; start_apiserver || rc=$?
  [ "$rc" = 0 ] || { stop apiserver || true; die "kube-apiserver did not start (port $apiserver_port)"; }
}

cmd_status() {
  dir=$(cd "$1" && pwd -P); load_conf
  local rc=0
  if running etcd && curl -sf --max-time 2 --cacert "$dir/ca.crt" --cert "$dir/etcd-client.crt" \
       --key "$dir/etcd-client.key" "https://127.0.0.1:$etcd_client_port/health" 2>/dev/null | grep -q '"health":"true"'; then
    echo "etcd: healthy, pid $(readpid "$dir/etcd.pid"), https://127.0.0.1:$etcd_client_port"
  elif running etcd; then echo "etcd: running but not healthy, pid $(readpid "$dir/etcd.pid")"; rc=1
  else echo "etcd: stopped"; rc=1; fi
  if running apiserver && curl -sf --max-time 2 --cacert "$dir/ca.crt" --cert "$dir/admin.crt" \
       --key "$dir/admin.key" "https://127.0.0.1:$apiserver_port/readyz" >/dev/null 2>&1; then
    echo "kube-apiserver: ready, pid $(readpid "$dir/apiserver.pid"), https://127.0.0.1:$apiserver_port"
  elif running apiserver; then echo "kube-apiserver: running but not ready, pid $(readpid "$dir/apiserver.pid")"; rc=1
  else echo "kube-apiserver: stopped"; rc=1; fi
  return $rc
}

# issue-cert DIR NAME CN [GROUP...]: a new client-certificate identity, for
# tests of least privilege (a certificate's CN is the user name, each O a
# group; CN "system:serviceaccount:NS:SA" is taken for that ServiceAccount by
# RBAC, whose subjects match user names).
cmd_issue_cert() {
  [ $# -ge 3 ] || usage
  dir=$(cd "$1" && pwd -P); load_conf
  local name=$2 cn=$3 subj='' g user
  shift 3
  case $name in ''|*[!A-Za-z0-9._-]*) die "issue-cert: NAME must be [A-Za-z0-9._-]+, got '$name'" ;; esac
  case $name in admin|cert-user|apiserver|etcd|etcd-client|ca|sa) die "issue-cert: NAME '$name' is taken" ;; esac
  for g in "$cn" "$@"; do
    case $g in ''|*[/+\\,=]*) die "issue-cert: CN and groups must be non-empty, without / + \\ , =: '$g'" ;; esac
  done
  for g in "$@"; do subj="$subj/O=$g"; done
  # A ServiceAccount's user name is often longer than the 64 characters
  # X.509 allows a CN (ub-common-name) and openssl enforces: lift that limit
  # (kube-apiserver, in Go, reads longer ones). Test certificates only.
  cat > "$dir/openssl-long-cn.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
stbl = stbl_sect
[stbl_sect]
commonName = min:1,max:256
organizationName = min:1,max:256
[req]
distinguished_name = dn
[dn]
EOF
  OPENSSL_CONF=$dir/openssl-long-cn.cnf cert "$name" "$subj/CN=$cn" clientAuth
  user="    client-certificate: $dir/$name.crt
    client-key: $dir/$name.key"
  kubeconfig "$dir/$name.kubeconfig" "$name" "$user"
  echo "$dir/$name.kubeconfig"
}

[ $# -ge 2 ] || usage
command=$1; shift
case $command in
  up) cmd_up "$1" ;;
  down) cmd_down "$1" ;;
  stop-apiserver) cmd_stop_apiserver "$1" ;;
  start-apiserver) cmd_start_apiserver "$1" ;;
  restart-apiserver) cmd_stop_apiserver "$1"; cmd_start_apiserver "$1" ;;
  status) cmd_status "$1" ;;
  issue-cert) cmd_issue_cert "$@" ;;
  _keep) dir=$1; keep "$@" ;;
  *) usage ;;
esac
