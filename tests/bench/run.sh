#!/usr/bin/env bash
# tests/bench/run.sh - design.md section 6 measured in one run, side by side
# with the alternatives, on the real control plane; writes docs/benchmarks.md.
#
#   make bench                                       the way to run it
#   tests/cluster/with-cluster.sh tests/bench/run.sh what make bench runs
#
# Needs the cluster variables of tests/cluster/with-cluster.sh and the
# programs built by make: $O/tianqing-upgrade-controller,
# $O/tests/bench/benchtool, $O/tests/bench/peakrss.
#
# Environment (defaults in brackets): O [build], BENCH_OUT
# [docs/benchmarks.md], BENCH_DEPLOYMENTS [2000], BENCH_NAMESPACES [20],
# BENCH_REPS [9], BENCH_APPLIES [200], BENCH_INTERVAL_MS [450],
# BENCH_BURST [50], BENCH_IDLE_S [60]. Progress goes to stderr; the file is
# written only when the run completes.
#
# In order:
#  1. four paused TianqingUpgrades; the controller started with
#     --leader-elect as user tqu-cert-user (cluster.sh's certificate user),
#     its resident memory (VmRSS) and private memory (RssAnon) read with
#     no Deployment in the cluster;
#  2. BENCH_DEPLOYMENTS Deployments in BENCH_NAMESPACES namespaces, rolled
#     out (set-up, not measured);
#  3. one warm-up round, then BENCH_REPS rounds of: the k8s client's
#     paginated LIST, tqu_backup_deployments, curl of the raw list,
#     `kubectl get deployment -A --no-headers`, `kubectl get deployment -A
#     -o json` (each a fresh process: wall time and peak RSS);
#  4. BENCH_APPLIES server-side applies to the TianqingUpgrades, at most one
#     every BENCH_INTERVAL_MS, then BENCH_BURST back to back: apply response
#     -> status.observedGeneration seen on a watch;
#  5. BENCH_IDLE_S seconds idle: the controller's VmRSS and RssAnon every
#     second, its CPU time, and its writes in the audit log.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 1
O=${O:-build}
BIN=$repo/$O/tianqing-upgrade-controller
TOOL=$repo/$O/tests/bench/benchtool
PEAK=$repo/$O/tests/bench/peakrss
OUT=${BENCH_OUT:-$repo/docs/benchmarks.md}
N=${BENCH_DEPLOYMENTS:-2000}
NNS=${BENCH_NAMESPACES:-20}
REPS=${BENCH_REPS:-9}
APPLIES=${BENCH_APPLIES:-200}
INTERVAL_MS=${BENCH_INTERVAL_MS:-450}
BURST=${BENCH_BURST:-50}
IDLE_S=${BENCH_IDLE_S:-60}
CTL_USER=tqu-cert-user          # CN of $TQU_KUBECONFIG_CERT: the controller's identity
TQU_NS=tqu-bench
TQU_NAMES=(bench-0 bench-1 bench-2 bench-3)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

for v in TQU_CLUSTER_DIR TQU_API_SERVER TQU_CA_FILE TQU_KUBECONFIG_ADMIN TQU_KUBECONFIG_CERT \
         TQU_ADMIN_CERT TQU_ADMIN_KEY TQU_AUDIT_LOG KUBECONFIG; do
  [ -n "${!v:-}" ] || die "$v is not set: run under tests/cluster/with-cluster.sh (make bench does)"
done
for f in "$BIN" "$TOOL" "$PEAK"; do
  [ -x "$f" ] || die "$f is missing: make bench builds it"
done
for c in kubectl curl jq awk; do
  command -v "$c" >/dev/null || die "$c is not installed"
done

work=$(mktemp -d "$TQU_CLUSTER_DIR/bench.XXXXXX") || die "mktemp"
# rt_tqu, rt_observed, rt_audit_writes and rt_le, shared with the e2e tests
TQU_BIN=$BIN tmp=$work
# shellcheck source=../e2e/runtime_lib.sh
. "$repo/tests/e2e/runtime_lib.sh"
CTL_PID=
cleanup() {
  if [ -n "$CTL_PID" ] && kill -0 "$CTL_PID" 2>/dev/null; then
    kill -TERM "$CTL_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$CTL_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$CTL_PID" 2>/dev/null
    wait "$CTL_PID" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

T_START=$(date +%s)

# ------------------------------------------------------------ helpers

# kv KEY < line: the value of KEY=value
kv() { sed -n "s/^\(.* \)\{0,1\}$1=\([^ ]*\).*/\2/p" | head -n1; }
# stats < numbers: "median min max" (median of an even count: the mean of the two middle ones)
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan nan nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    print m, v[1], v[NR] }'
}
# calc EXPR: awk arithmetic, printed with %.Nf (default 3)
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
mib() { calc "$1 / 1024" "${2:-1}"; }
status_kib() { awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
metrics() { curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics"; }
metric() { awk -v s="$2" '$1 == s { print $2; exit }' "$1"; }

# ------------------------------------------------------------ machine
log "machine and versions"
M_CPU=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
M_NPROC=$(nproc)
M_MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
M_KERNEL=$(uname -sr)
M_OS=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null)
M_DEBIAN=$(cat /etc/debian_version 2>/dev/null || echo "?")
M_APISERVER=$(kubectl version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion // "?"')
M_KUBECTL=$(kubectl version --client -o json 2>/dev/null | jq -r '.clientVersion.gitVersion // "?"')
M_ETCD=$(etcd --version 2>/dev/null | head -n1 | sed 's/^etcd Version: //')
M_CURL=$(curl --version | head -n1 | awk '{ print $2 }')
M_OPENSSL=$(openssl version 2>/dev/null | awk '{ print $2 }')
M_CC=$(${CC:-cc} --version 2>/dev/null | head -n1)
M_CTL=$("$BIN" --version 2>/dev/null | head -n1)
M_GIT=$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo "?")
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
M_LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
M_FAB=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null | sed 's/.*\[\(.*\)\].*/\1/')

# ------------------------------------------------------------ 1. controller
log "4 paused TianqingUpgrades in $TQU_NS; starting the controller"
kubectl create namespace "$TQU_NS" >/dev/null || die "namespace $TQU_NS"
for n in "${TQU_NAMES[@]}"; do
  rt_tqu "$TQU_NS" "$n" || die "TianqingUpgrade $n"
done
PORT=$("$TOOL" freeport) || die "no free port"
CTL_ARGS=(--kubeconfig "$TQU_KUBECONFIG_CERT" --health-addr "127.0.0.1:$PORT" --log-level warn
          --leader-elect --leader-election-namespace "$TQU_NS")
# as shipped (manifests/deployment.yaml, the systemd unit): GnuTLS, linked
# by Debian's libcurl but unused, skips its start-up work
GNUTLS_NO_IMPLICIT_INIT=1 "$BIN" "${CTL_ARGS[@]}" </dev/null >"$work/controller.log" 2>&1 &
CTL_PID=$!
all_observed() {
  local n
  for n in "${TQU_NAMES[@]}"; do rt_observed "$TQU_NS" "$n" || return 1; done
}
ok=
for _ in $(seq 150); do
  kill -0 "$CTL_PID" 2>/dev/null || die "the controller exited: $(tail -n 5 "$work/controller.log")"
  if curl -fsS --max-time 2 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && all_observed; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || die "the controller did not reconcile the TianqingUpgrades within 30 s: $(tail -n 5 "$work/controller.log")"
sleep 5
RSS_EMPTY=$(status_kib "$CTL_PID" VmRSS)
ANON_EMPTY=$(status_kib "$CTL_PID" RssAnon)
log "controller pid $CTL_PID ready; with no Deployment: VmRSS $RSS_EMPTY KiB, RssAnon $ANON_EMPTY KiB"

# ------------------------------------------------------------ 2. Deployments
log "creating $N Deployments in $NNS namespaces"
POP=$("$TOOL" populate "$TQU_KUBECONFIG_ADMIN" "$N" "$NNS" bench 8) || die "populate"
POP_S=$(kv seconds <<<"$POP")
raw_list() {
  curl -fsS --cacert "$TQU_CA_FILE" --cert "$TQU_ADMIN_CERT" --key "$TQU_ADMIN_KEY" \
    "$TQU_API_SERVER/apis/apps/v1/deployments"
}
LIST_BYTES=$(raw_list | wc -c)
HAVE=$(raw_list | jq '.items | length')
[ "$HAVE" = "$N" ] || die "expected $N Deployments, the cluster has $HAVE"
log "created in ${POP_S}s; the raw list is $LIST_BYTES bytes"

# ------------------------------------------------------------ 3. backup vs the alternatives
mkdir -p "$work/backup"
CURL_CMD=(curl -fsS --cacert "$TQU_CA_FILE" --cert "$TQU_ADMIN_CERT" --key "$TQU_ADMIN_KEY"
          "$TQU_API_SERVER/apis/apps/v1/deployments")
KNH_CMD=(kubectl --kubeconfig "$TQU_KUBECONFIG_ADMIN" get deployment -A --no-headers)
KJS_CMD=(kubectl --kubeconfig "$TQU_KUBECONFIG_ADMIN" get deployment -A -o json)
: >"$work/rounds.txt"
# one_run TAG CMD...: appends "TAG | peakrss's line | the program's own
# key=value line" (our tools) or "TAG | peakrss's line |" (their output is
# discarded: /dev/null)
one_run() {
  local tag=$1 r own=
  shift
  if [ "$1" = "$TOOL" ]; then
    r=$("$PEAK" -o "$work/own.txt" "$@") || die "peakrss $*"
    own=$(cat "$work/own.txt")
  else
    r=$("$PEAK" "$@") || die "peakrss $*"
  fi
  [ "$(kv status <<<"$r")" = 0 ] || die "$* failed: $r"
  printf '%s | %s |%s\n' "$tag" "$r" "${own:+ $own}" >>"$work/rounds.txt"
}
for rep in $(seq 0 "$REPS"); do
  [ "$rep" = 0 ] && log "warm-up round" || log "round $rep of $REPS"
  one_run "list r$rep" "$TOOL" list "$TQU_KUBECONFIG_ADMIN"
  one_run "backup r$rep" "$TOOL" backup "$TQU_KUBECONFIG_ADMIN" "$work/backup" "r$rep"
  rm -f "$work/backup"/deploy_*
  one_run "curl r$rep" "${CURL_CMD[@]}"
  one_run "kubectl-no-headers r$rep" "${KNH_CMD[@]}"
  one_run "kubectl-json r$rep" "${KJS_CMD[@]}"
done
one_run "client r1" "$TOOL" client "$TQU_KUBECONFIG_ADMIN"
FLOOR=$("$TOOL" floor "$TQU_KUBECONFIG_CERT") || die "floor"
grep -v ' r0 | ' "$work/rounds.txt" >"$work/measured.txt"
# Lines are "TAG rN | peakrss's line | the program's own line (our tools only)".
wall_secs() { grep "^$1 " "$work/measured.txt" | cut -d'|' -f2 | while read -r l; do kv seconds <<<"$l"; done; }
peak_kib() { grep "^$1 " "$work/measured.txt" | cut -d'|' -f2 | while read -r l; do kv maxrss_kib <<<"$l"; done; }
own_secs() { grep "^$1 " "$work/measured.txt" | cut -d'|' -f3 | while read -r l; do kv seconds <<<"$l"; done; }
hwm_kib() { grep "^$1 " "$work/measured.txt" | cut -d'|' -f3 | while read -r l; do kv hwm_kib <<<"$l"; done; }
read -r L_MED L_MIN L_MAX < <(own_secs list | stats)
read -r B_MED B_MIN B_MAX < <(own_secs backup | stats)
read -r LW_MED LW_MIN LW_MAX < <(wall_secs list | stats)
read -r BW_MED BW_MIN BW_MAX < <(wall_secs backup | stats)
read -r C_MED C_MIN C_MAX < <(wall_secs curl | stats)
read -r KN_MED KN_MIN KN_MAX < <(wall_secs kubectl-no-headers | stats)
read -r KJ_MED KJ_MIN KJ_MAX < <(wall_secs kubectl-json | stats)
read -r LM_MED _ LM_MAX < <(hwm_kib list | stats)
read -r BM_MED _ BM_MAX < <(hwm_kib backup | stats)
read -r CM_MED _ CM_MAX < <(peak_kib curl | stats)
read -r KNM_MED _ KNM_MAX < <(peak_kib kubectl-no-headers | stats)
read -r KJM_MED _ KJM_MAX < <(peak_kib kubectl-json | stats)
CLIENT_KIB=$(grep '^client ' "$work/rounds.txt" | cut -d'|' -f3 | kv hwm_kib)
B_COUNT=$(grep '^backup ' "$work/measured.txt" | head -n1 | cut -d'|' -f3 | kv count)
B_JSON=$(grep '^backup ' "$work/measured.txt" | head -n1 | cut -d'|' -f3 | kv json_bytes)
B_LOG=$(grep '^backup ' "$work/measured.txt" | head -n1 | cut -d'|' -f3 | kv log_bytes)
[ "$B_COUNT" = "$N" ] || die "the backup saved $B_COUNT Deployments, not $N"
read -r LC_MED _ _ < <(grep "^list " "$work/measured.txt" | cut -d'|' -f3 | while read -r l; do kv cpu_s <<<"$l"; done | stats)
read -r BC_MED BC_MIN BC_MAX < <(grep "^backup " "$work/measured.txt" | cut -d'|' -f3 | while read -r l; do kv cpu_s <<<"$l"; done | stats)
# Each round runs the list and then the backup, a second apart, so both see
# the same load on the machine: the verdict takes the median of the
# per-round ratios. The ratio of the medians and of the fastest runs are
# shown beside it.
awk -F'|' '{ split($1, a, " "); if (match($3, / seconds=[0-9.]+/)) t[a[1], a[2]] = substr($3, RSTART + 9, RLENGTH - 9); r[a[2]] = 1 }
     END { for (k in r) if (t["backup", k] > 0 && t["list", k] > 0) print t["backup", k] / t["list", k] }' \
  "$work/measured.txt" >"$work/ratios.txt"
read -r R_LIST R_LIST_MIN R_LIST_MAX < <(stats <"$work/ratios.txt")
R_LIST=$(calc "$R_LIST" 2) R_LIST_MIN=$(calc "$R_LIST_MIN" 2) R_LIST_MAX=$(calc "$R_LIST_MAX" 2)
R_MEDIANS=$(calc "$B_MED / $L_MED" 2)
R_FASTEST=$(calc "$B_MIN / $L_MIN" 2)
R_CURL=$(calc "$B_MED / $C_MED" 2)

# ------------------------------------------------------------ 4. apply -> status
scrape() { metrics >"$work/metrics.$1" || die "GET /metrics"; }
# reconcile and API means between two scrapes:
# "reconciles reconcile_mean_ms get_mean_ms put_mean_ms gets puts"
# d A B SERIES: SERIES in scrape B minus scrape A
d() { calc "$(metric "$work/metrics.$2" "$3") - $(metric "$work/metrics.$1" "$3")" 6; }
# mean_ms SUM COUNT
mean_ms() { calc "$1 / ($2 > 0 ? $2 : 1) * 1000" 2; }
metric_delta() {
  local rs rc gs gc ps pc
  rs=$(d "$1" "$2" tqu_reconcile_duration_seconds_sum)
  rc=$(d "$1" "$2" tqu_reconcile_duration_seconds_count)
  gs=$(d "$1" "$2" 'tqu_api_request_duration_seconds_sum{verb="GET"}')
  gc=$(d "$1" "$2" 'tqu_api_request_duration_seconds_count{verb="GET"}')
  ps=$(d "$1" "$2" 'tqu_api_request_duration_seconds_sum{verb="PUT"}')
  pc=$(d "$1" "$2" 'tqu_api_request_duration_seconds_count{verb="PUT"}')
  echo "$(calc "$rc" 0) $(mean_ms "$rs" "$rc") $(mean_ms "$gs" "$gc") $(mean_ms "$ps" "$pc") $(calc "$gc" 0) $(calc "$pc" 0)"
}
log "apply -> status: $APPLIES applies, at most one every $INTERVAL_MS ms"
scrape 0
LAT=$("$TOOL" latency "$TQU_KUBECONFIG_ADMIN" "$TQU_NS" "$APPLIES" "$INTERVAL_MS" "$work/latency-paced.txt" \
      "${TQU_NAMES[@]}") || die "latency (paced): $LAT"
scrape 1
log "apply -> status: $BURST applies back to back"
LATB=$("$TOOL" latency "$TQU_KUBECONFIG_ADMIN" "$TQU_NS" "$BURST" 0 "$work/latency-burst.txt" \
       "${TQU_NAMES[@]}") || die "latency (back to back): $LATB"
scrape 2
read -r P_REC P_REC_MS P_GET_MS P_PUT_MS P_GETS P_PUTS < <(metric_delta 0 1)
read -r Q_REC Q_REC_MS Q_GET_MS Q_PUT_MS Q_GETS Q_PUTS < <(metric_delta 1 2)
for k in p50_ms p90_ms p99_ms max_ms min_ms mean_ms measured timeouts apply_p50_ms spec_event_mean_ms after_spec_event_mean_ms; do
  printf -v "P_${k^^}" '%s' "$(kv "$k" <<<"$LAT")"
  printf -v "Q_${k^^}" '%s' "$(kv "$k" <<<"$LATB")"
done

# ------------------------------------------------------------ 5. idle
log "settling 5 s, then ${IDLE_S} s idle"
sleep 5
AUDIT_OFF=$(stat -c %s "$TQU_AUDIT_LOG")
AUDIT_INODE=$(stat -c %i "$TQU_AUDIT_LOG")
CLK=$(getconf CLK_TCK)
CPU0=$(cpu_ticks "$CTL_PID")
T0=$(date +%s.%N)
: >"$work/rss.txt"
: >"$work/anon.txt"
for _ in $(seq "$IDLE_S"); do
  sleep 1
  status_kib "$CTL_PID" VmRSS >>"$work/rss.txt" || die "the controller exited during the idle minute"
  status_kib "$CTL_PID" RssAnon >>"$work/anon.txt" || die "the controller exited during the idle minute"
done
CPU1=$(cpu_ticks "$CTL_PID")
T1=$(date +%s.%N)
IDLE_WALL=$(calc "$T1 - $T0" 1)
CPU_S=$(calc "($CPU1 - $CPU0) / $CLK" 2)
CPU_PCT=$(calc "($CPU1 - $CPU0) / $CLK / ($T1 - $T0) * 100" 2)
read -r RSS_MED RSS_MIN RSS_MAX < <(stats <"$work/rss.txt")
read -r ANON_MED ANON_MIN ANON_MAX < <(stats <"$work/anon.txt")
[ "$(stat -c %i "$TQU_AUDIT_LOG")" = "$AUDIT_INODE" ] || die "the audit log was rotated during the idle minute"
rt_audit_writes "$AUDIT_OFF" "$CTL_USER" |
  jq -c '{verb, resource: .objectRef.resource, name: .objectRef.name, code: .responseStatus.code}' \
  >"$work/writes.txt"
W_LEASE=$(jq -s '[.[] | select(.resource == "leases")] | length' "$work/writes.txt")
W_OTHER=$(jq -s '[.[] | select(.resource != "leases")] | length' "$work/writes.txt")
W_OTHER_LIST=$(jq -r 'select(.resource != "leases") | "\(.verb) \(.resource)/\(.name) \(.code)"' "$work/writes.txt" | sort | uniq -c | head -n 10)
ANON=$(status_kib "$CTL_PID" RssAnon)
FILE=$(status_kib "$CTL_PID" RssFile)
SHMEM=$(status_kib "$CTL_PID" RssShmem)
THREADS=$(status_kib "$CTL_PID" Threads)
PSS=$(awk '$1 == "Pss:" { print $2 }' "/proc/$CTL_PID/smaps_rollup")
USS=$(awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" { s += $2 } END { print s }' "/proc/$CTL_PID/smaps_rollup")
awk '/^[0-9a-f]+-[0-9a-f]+ / { n = ($6 == "") ? "[anonymous]" : $6; sub(/.*\//, "", n) }
     $1 == "Rss:" { rss[n] += $2 } $1 == "Private_Dirty:" { pd[n] += $2 }
     END { for (n in rss) printf "%d %d %s\n", rss[n], pd[n], n }' "/proc/$CTL_PID/smaps" |
  sort -rn >"$work/maps.txt"
NLIBS=$(grep -c '\.so' "$work/maps.txt")
for st in main curlinit request; do
  for f in rss anon file libcrypto; do
    printf -v "FL_${st^^}_${f^^}" '%s' "$(kv "${st}_${f}_kib" <<<"$FLOOR")"
  done
done

log "stopping the controller (SIGTERM)"
kill -TERM "$CTL_PID"
wait "$CTL_PID"
CTL_RC=$?
CTL_PID=

# ------------------------------------------------------------ verdicts
verdict() { if rt_le "$1" "$2"; then echo met; else echo "**MISSED**"; fi; }
# whatever the number of Deployments: every idle sample and the one with none
V_ANON=$(verdict "$ANON_MAX" 4096)
rt_le "$ANON_EMPTY" 4096 || V_ANON="**MISSED**"
V_PEAK=$(verdict "$BM_MAX" 32768)
V_BTIME=$(verdict "$R_LIST" 1.5)
V_P50=$(verdict "$P_P50_MS" 50)
V_P99=$(verdict "$P_P99_MS" 200)
[ "$P_TIMEOUTS" = 0 ] || { V_P50="**MISSED**"; V_P99="**MISSED**"; }
V_WRITES=$(verdict "$W_OTHER" 0)
V_CPU=$(verdict "$CPU_PCT" 1)
T_TOTAL=$(( $(date +%s) - T_START ))
M_LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

reason_anon=
if [ "$V_ANON" != met ]; then
  reason_anon="RssAnon is $(mib "$ANON_MED") MiB idle beside $N Deployments (highest sample $(mib "$ANON_MAX") MiB) and $(mib "$ANON_EMPTY") MiB with no Deployment. A program that links the same libraries and does nothing else (\`benchtool floor\`) has $(mib "$FL_MAIN_ANON") MiB of RssAnon when main() starts, $(mib "$FL_CURLINIT_ANON") MiB after curl_global_init (OpenSSL's initialisation) and $(mib "$FL_REQUEST_ANON") MiB after one request (a TLS handshake); the rest is the controller's heap, thread stacks and malloc arenas. See \"Where the idle memory goes\"."
fi
reason_lat=
if [ "$V_P50" != met ] || [ "$V_P99" != met ]; then
  reason_lat="MISSED: see \"Where the time goes\"."
fi

# ------------------------------------------------------------ the file
log "writing $OUT"
tmpout=$work/benchmarks.md
{
cat <<EOF
# Benchmarks

Produced by \`make bench\` (it builds, then runs
\`tests/cluster/with-cluster.sh tests/bench/run.sh\`), which rewrites this
file; run it again to reproduce the figures. The targets are those of
design.md section 6. Everything below comes from one run of $T_TOTAL s on
$M_DATE, tree \`$M_GIT\`.

## Machine

| | |
|---|---|
| CPU | $M_CPU, $M_NPROC CPUs (\`nproc\`) |
| memory | $M_MEM |
| kernel | $M_KERNEL (transparent huge pages: $M_FAB) |
| OS | $M_OS (debian_version $M_DEBIAN) |
| kube-apiserver | $M_APISERVER (Debian source package, tests/cluster), etcd $M_ETCD, same machine |
| kubectl | $M_KUBECTL |
| curl / OpenSSL | $M_CURL / $M_OPENSSL |
| load average (1, 5, 15 min) | $M_LOAD0 at the start, $M_LOAD1 at the end (other work on the machine shows here) |
| compiler | $M_CC |
| controller | \`$M_CTL\` |

## Summary

| what (design.md section 6) | target | measured | verdict |
|---|---|---|---|
| private memory, idle (RssAnon), beside $N Deployments and with none | <= 4 MiB, whatever the number of Deployments | RssAnon $(mib "$ANON_MED") MiB median of $IDLE_S samples ($(mib "$ANON_MIN")-$(mib "$ANON_MAX")); with no Deployment $(mib "$ANON_EMPTY") MiB. Total beside it: VmRSS $(mib "$RSS_MED") MiB ($(mib "$RSS_MIN")-$(mib "$RSS_MAX")), with no Deployment $(mib "$RSS_EMPTY") MiB; of it RssFile $(mib "$FILE") MiB (the $NLIBS shared libraries and the binary, from the page cache), RssShmem $(mib "$SHMEM") MiB; PSS $(mib "$PSS") MiB | $V_ANON |
| peak memory during the backup of $N Deployments | <= 32 MiB | $(mib "$BM_MAX") MiB (highest of $REPS; whole process, VmHWM) | $V_PEAK |
| backup of $N Deployments | <= 1.5x the raw list request | **${R_LIST}x** the client's paginated LIST: median of $REPS paired rounds (${R_LIST_MIN}x-${R_LIST_MAX}x); medians $(calc "$B_MED" 3) s vs $(calc "$L_MED" 3) s (${R_MEDIANS}x), fastest runs ${R_FASTEST}x; ${R_CURL}x one unpaginated curl GET ($(calc "$C_MED" 3) s) | $V_BTIME |
| apply -> status reflects the new generation, p50 | <= 50 ms | $P_P50_MS ms ($P_MEASURED applies) | $V_P50 |
| apply -> status, p99 | <= 200 ms | $P_P99_MS ms | $V_P99 |
| API writes in steady state | zero | $W_OTHER in ${IDLE_WALL} s (besides $W_LEASE Lease renewals of \`--leader-elect\`) | $V_WRITES |
| CPU when idle | ~0 (taken as <= 1 % of one CPU) | $CPU_S s in ${IDLE_WALL} s = $CPU_PCT % of one CPU | $V_CPU |
EOF
[ -n "$reason_anon" ] && printf '\nWhy private memory is missed: %s\n' "$reason_anon"
[ -n "$reason_lat" ] && printf '\nWhy apply -> status is missed: %s\n' "$reason_lat"
cat <<EOF

## Set-up

- $N Deployments in $NNS namespaces (\`benchtool populate\`, ${POP_S} s, not
  counted): one container with a port, env, limits, a hostPath volume, and
  rollout status written through \`/status\`; the raw list
  (\`GET /apis/apps/v1/deployments\`) is $(calc "$LIST_BYTES / 1048576" 1) MiB, $(calc "$LIST_BYTES / $N" 0) bytes
  per Deployment with its managedFields (design.md's reference figures,
  from another machine, suggest Deployments of a similar size:
  \`kubectl get deployment -A -o json\` took 148 MiB there,
  $(mib "$KJM_MED") MiB here).
- The controller: \`GNUTLS_NO_IMPLICIT_INIT=1 $(basename "$BIN") ${CTL_ARGS[*]}\` (as the manifests ship it; the kubeconfig is
  cluster.sh's certificate user \`$CTL_USER\`), beside 4 paused
  TianqingUpgrades. It watches only TianqingUpgrades.
- Every command below is a fresh process run by \`peakrss\` (fork, exec,
  wait4): wall time and peak RSS (ru_maxrss). For our two programs the
  time of the list or backup itself is also taken inside the process, from
  before the first request (so it includes the TLS handshake) to the end.
  One warm-up round, then $REPS measured rounds, the commands interleaved.

## Backup beside the alternatives ($N Deployments)

| command | time, median (min-max) | peak RSS, median (max) | time / client LIST | design.md reference |
|---|---|---|---|---|
| k8s client paginated LIST, items dropped (\`benchtool list\`), in-process | $(calc "$L_MED") s ($(calc "$L_MIN")-$(calc "$L_MAX")) | $(mib "$LM_MED") MiB ($(mib "$LM_MAX")) | 1.00x | raw list request 0.11 s |
| **tqu_backup_deployments** (\`benchtool backup\`), in-process | $(calc "$B_MED") s ($(calc "$B_MIN")-$(calc "$B_MAX")) | $(mib "$BM_MED") MiB ($(mib "$BM_MAX")) | ${R_MEDIANS}x (paired: ${R_LIST}x) | |
| the same LIST, whole process | $(calc "$LW_MED") s ($(calc "$LW_MIN")-$(calc "$LW_MAX")) | | $(calc "$LW_MED / $L_MED" 2)x | |
| the same backup, whole process | $(calc "$BW_MED") s ($(calc "$BW_MIN")-$(calc "$BW_MAX")) | | $(calc "$BW_MED / $L_MED" 2)x | |
| \`curl\` of the raw list, one unpaginated GET | $(calc "$C_MED") s ($(calc "$C_MIN")-$(calc "$C_MAX")) | $(mib "$CM_MED") MiB ($(mib "$CM_MAX")) | $(calc "$C_MED / $L_MED" 2)x | |
| \`kubectl get deployment -A --no-headers\` (the runbook) | $(calc "$KN_MED") s ($(calc "$KN_MIN")-$(calc "$KN_MAX")) | $(mib "$KNM_MED") MiB ($(mib "$KNM_MAX")) | $(calc "$KN_MED / $L_MED" 2)x | 0.43 s / 100 MiB |
| \`kubectl get deployment -A -o json\` | $(calc "$KJ_MED") s ($(calc "$KJ_MIN")-$(calc "$KJ_MAX")) | $(mib "$KJM_MED") MiB ($(mib "$KJM_MAX")) | $(calc "$KJ_MED / $L_MED" 2)x | 1.05 s / 148 MiB |

The backup writes both files of the runbook in that time: deploy_<stamp>.log
($B_LOG bytes, in the layout of \`kubectl get deployment -A --no-headers\`,
which tests/integration/test_backup.c checks) and deploy_<stamp>.json
($B_JSON bytes, $B_COUNT manifests), each fsynced and renamed into place. Client-side CPU time (user + system): list median
$(calc "$LC_MED") s, backup median $(calc "$BC_MED") s ($(calc "$BC_MIN")-$(calc "$BC_MAX")). The backup's own work (serialising
and writing each manifest, the table, SHA-256 of both files) is that
difference, and as the client handles a page before it asks for the
next, it adds to the backup's time. Its slow runs (up to $(calc "$B_MAX") s) are
waiting, not CPU: for the disk (the backup fsyncs its files and folder)
or for a CPU on a busy machine (load average above). A client that has made no request peaks at
$(mib "$CLIENT_KIB") MiB (the libraries); the rest of the peak is one page
of 500 Deployments parsed into cJSON.

## apply -> status

A server-side apply (\`PATCH application/apply-patch+yaml\`) changes
\`spec.disk.reserveGiB\` of one of the 4 paused TianqingUpgrades (in turn);
the time runs from the apply's response, which carries the new
\`metadata.generation\`, to the first event of a watch (opened before the
first apply) whose \`status.observedGeneration\` is that generation. A paused
resource's reconcile reads it (GET) and writes its status (PUT /status).

| run | applies | p50 | p90 | p99 | max | mean |
|---|---|---|---|---|---|---|
| paced: at most one every $INTERVAL_MS ms (what the target is judged on) | $P_MEASURED of $APPLIES | $P_P50_MS ms | $P_P90_MS ms | $P_P99_MS ms | $P_MAX_MS ms | $P_MEAN_MS ms |
| back to back: the next apply as soon as the last status is seen | $Q_MEASURED of $BURST | $Q_P50_MS ms | $Q_P90_MS ms | $Q_P99_MS ms | $Q_MAX_MS ms | $Q_MEAN_MS ms |

### Where the time goes

| | paced | back to back |
|---|---|---|
| apply request itself, p50 (not counted) | $P_APPLY_P50_MS ms | $Q_APPLY_P50_MS ms |
| the spec change seen on our watch, mean, from the response (negative: the event came before the response) | $P_SPEC_EVENT_MEAN_MS ms | $Q_SPEC_EVENT_MEAN_MS ms |
| from there to the status event, mean | $P_AFTER_SPEC_EVENT_MEAN_MS ms | $Q_AFTER_SPEC_EVENT_MEAN_MS ms |
| reconciles (controller /metrics) | $P_REC, mean $P_REC_MS ms | $Q_REC, mean $Q_REC_MS ms |
| of which API requests: GET, PUT mean (count) | $P_GET_MS ms ($P_GETS), $P_PUT_MS ms ($P_PUTS) | $Q_GET_MS ms ($Q_GETS), $Q_PUT_MS ms ($Q_PUTS) |
| the rest of a reconcile (rate-limiter waits, JSON, logic), mean | $(calc "$P_REC_MS - $P_GET_MS - $P_PUT_MS" 2) ms | $(calc "$Q_REC_MS - $Q_GET_MS - $Q_PUT_MS" 2) ms |

Each reconcile of a paused resource makes two requests through the
controller's client, which limits itself like client-go (5 requests/s,
burst 10): 2.5 reconciles a second at most, sustained. Paced at
$(calc "1000 / $INTERVAL_MS" 1) applies a second the work stays under that limit, so the figure is
the watch delivery plus the GET and the PUT. Back to back, once the burst
of 10 tokens is spent each request waits for its token (about 0.2 s each,
0.4 s per reconcile): the back-to-back figures measure the client-side
rate limit (client-go's defaults, kept on purpose to protect the API
server), not the work queue or the reconcile.

## Idle

After the applies and 5 s of settling: $IDLE_S samples of VmRSS and
RssAnon, one a second; CPU time (utime + stime from /proc/PID/stat) over the same ${IDLE_WALL} s;
the audit log (writes only, tests/cluster) filtered to user \`$CTL_USER\`.

| | |
|---|---|
| VmRSS median (min-max) | $(mib "$RSS_MED") MiB ($(mib "$RSS_MIN")-$(mib "$RSS_MAX")) |
| VmRSS with no Deployment in the cluster (before set-up and the applies) | $(mib "$RSS_EMPTY") MiB |
| RssAnon (heap, stacks, thread arenas: the controller's own) median (min-max) | $(mib "$ANON_MED") MiB ($(mib "$ANON_MIN")-$(mib "$ANON_MAX")) |
| RssAnon with no Deployment in the cluster | $(mib "$ANON_EMPTY") MiB |
| RssFile (shared libraries and the binary, from the page cache), at the end | $(mib "$FILE") MiB |
| RssShmem (shared memory), at the end | $(mib "$SHMEM") MiB |
| PSS / USS (private) | $(mib "$PSS") MiB / $(mib "$USS") MiB |
| threads | $THREADS |
| CPU | $CPU_S s in ${IDLE_WALL} s ($CPU_PCT % of one CPU) |
| writes other than the Lease | $W_OTHER |
| Lease renewals (\`--leader-elect\`, every 2 s; none without it) | $W_LEASE |
| exit status after SIGTERM | $CTL_RC |
EOF
if [ "$W_OTHER" != 0 ]; then
  printf '\nWrites other than the Lease:\n\n```\n%s\n```\n' "$W_OTHER_LIST"
fi
cat <<EOF

### Where the idle memory goes

\`benchtool floor\` links the same libraries as the controller and reads its
own memory in stages, doing nothing else:

| stage | VmRSS | RssFile | RssAnon | of which libcrypto |
|---|---|---|---|---|
| main() starts: libraries loaded, relocated, constructors run | $(mib "$FL_MAIN_RSS") MiB | $(mib "$FL_MAIN_FILE") MiB | $(mib "$FL_MAIN_ANON") MiB | $(mib "$FL_MAIN_LIBCRYPTO") MiB |
| after curl_global_init (OpenSSL's initialisation) | $(mib "$FL_CURLINIT_RSS") MiB | $(mib "$FL_CURLINIT_FILE") MiB | $(mib "$FL_CURLINIT_ANON") MiB | $(mib "$FL_CURLINIT_LIBCRYPTO") MiB |
| after one client made one request (a TLS handshake) | $(mib "$FL_REQUEST_RSS") MiB | $(mib "$FL_REQUEST_FILE") MiB | $(mib "$FL_REQUEST_ANON") MiB | $(mib "$FL_REQUEST_LIBCRYPTO") MiB |
| the controller, idle (above) | $(mib "$RSS_MED") MiB | $(mib "$FILE") MiB | $(mib "$ANON") MiB | $(mib "$(awk '$3 ~ /^libcrypto/ { s += $1 } END { print s + 0 }' "$work/maps.txt")") MiB |

The controller's resident memory by mapping at the end of the idle minute
(KiB; "private dirty" is memory of its own, the rest is shared file pages):

| RSS KiB | private dirty KiB | mapping |
|---|---|---|
EOF
head -n 16 "$work/maps.txt" | awk '{ printf "| %d | %d | %s |\n", $1, $2, $3 }'
awk 'NR > 16 { r += $1; p += $2; n++ } END { if (n) printf "| %d | %d | %d more mappings |\n", r, p, n }' "$work/maps.txt"
cat <<EOF

## Raw numbers

Per round (r0 is the warm-up, not counted): the first \`seconds\` and
\`maxrss_kib\` are peakrss's (whole process), the rest is the program's own
line.

\`\`\`
$(cat "$work/rounds.txt")
\`\`\`

apply -> status, paced: \`$LAT\`

apply -> status, back to back: \`$LATB\`

Idle VmRSS samples, KiB: $(paste -sd' ' "$work/rss.txt")

Idle RssAnon samples, KiB: $(paste -sd' ' "$work/anon.txt")

\`benchtool floor\`: \`$FLOOR\`

Total CPU ticks (CLK_TCK $CLK): $CPU0 -> $CPU1. Audit log writes by \`$CTL_USER\` in the idle window: $W_LEASE Lease, $W_OTHER other.
EOF
} >"$tmpout" || die "cannot write the report"
mkdir -p "$(dirname "$OUT")"
cp "$tmpout" "$OUT.tmp" && mv "$OUT.tmp" "$OUT" || die "cannot write $OUT"
log "done in ${T_TOTAL}s: $OUT"
printf 'private memory idle RssAnon %s MiB (%s), VmRSS %s MiB; backup peak %s MiB (%s); backup %sx the list (%s); apply->status p50 %s ms (%s) p99 %s ms (%s); writes %s (%s); idle CPU %s %% (%s)\n' \
  "$(mib "$ANON_MED")" "$V_ANON" "$(mib "$RSS_MED")" "$(mib "$BM_MAX")" "$V_PEAK" "$R_LIST" "$V_BTIME" "$P_P50_MS" "$V_P50" \
  "$P_P99_MS" "$V_P99" "$W_OTHER" "$V_WRITES" "$CPU_PCT" "$V_CPU"
exit 0
