#!/usr/bin/env bash
# tests/bench/ssh_bench.sh - design.md section 6: copying the access
# point's image archive over SSH, ours (tqu_ssh_upload, via
# $O/tests/bench/sshcopy) against OpenSSH's scp, the same file on loopback
# to the same private sshd (tests/support/sshd-setup.sh), in one run.
# Target: ours >= 80 % of scp's throughput.
#
#   make bench-ssh                 the way to run it (root; not part of make test)
#
# Environment: O [build], BENCH_SSH_MIB [1024] (file size), BENCH_SSH_REPS
# [3] (copies of each, alternating; the median is reported). Both use
# their default cipher; scp (OpenSSH 9: the SFTP protocol) and ours talk to
# the same sftp-server. "ours" is the copy as scp does it: connect, log
# in, send (to <remote>.part) and rename; "ours, verified" adds our remote
# sha256sum of the result, which scp does not do. Prints a table on stdout.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
O=${O:-build}
case $O in /*) ;; *) O=$repo/$O ;; esac
TOOL=$O/tests/bench/sshcopy
MIB=${BENCH_SSH_MIB:-1024}
REPS=${BENCH_SSH_REPS:-3}
USER_=tqu-ssh-test
# the test user is shared with test_ssh and test_accesspoint: their password,
# so a bench beside them does not change it under them
PW="tqu test pw 'x' \$1"

log() { printf 'bench-ssh: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[ -x "$TOOL" ] || die "$TOOL missing (make bench-ssh builds it)"
[ "$(id -u)" -eq 0 ] || die "needs root (its own sshd and test user)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/tqu-ssh-bench-XXXXXX") || die "mktemp"
sshd_pid=
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

port=
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 40000))
  (: </dev/tcp/127.0.0.1/$p) 2>/dev/null || { port=$p; break; }
done
[ -n "$port" ] || die "no free port"
printf '%s\n' "$PW" | "$repo/tests/support/sshd-setup.sh" "$dir" "$port" || die "sshd-setup"
/usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
sshd_pid=$!
for _ in $(seq 50); do (: </dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
(: </dev/tcp/127.0.0.1/$port) 2>/dev/null || die "sshd did not start: $(cat "$dir/sshd.log")"

# known_hosts for both: "[127.0.0.1]:port" and each host key
for t in ed25519 ecdsa; do
  read -r kt kb _ < "$dir/ssh_host_${t}_key.pub"
  echo "[127.0.0.1]:$port $kt $kb"
done > "$dir/known_hosts"
printf '#!/bin/sh\necho %s\n' "$PW" > "$dir/askpass"
chmod 0700 "$dir/askpass"

log "writing a ${MIB} MiB file"
head -c $((MIB * 1048576)) /dev/urandom > "$dir/src" || die "cannot write $dir/src"
bytes=$(stat -c %s "$dir/src")
dst=$dir/upload/dst

scp_once() {
  local t0 t1
  rm -f "$dst"
  t0=$(date +%s.%N)
  SSH_ASKPASS=$dir/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none \
    scp -q -o UserKnownHostsFile="$dir/known_hosts" -o GlobalKnownHostsFile=/dev/null \
      -o StrictHostKeyChecking=yes -o PubkeyAuthentication=no -o BatchMode=no \
      -P "$port" "$dir/src" "$USER_@127.0.0.1:$dst" </dev/null || die "scp failed"
  t1=$(date +%s.%N)
  [ "$(stat -c %s "$dst")" = "$bytes" ] || die "scp: wrong size"
  echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}'
}

ours_once() {   # prints "copy_s total_s"
  local out
  rm -f "$dst" "$dst.part"
  out=$(printf '%s\n' "$PW" | "$TOOL" "127.0.0.1:$port" "$USER_" "$dir/known_hosts" "$dir/src" "$dst") \
    || die "sshcopy failed"
  [ "$(stat -c %s "$dst")" = "$bytes" ] || die "sshcopy: wrong size"
  echo "$out" | sed -n 's/.*verify_s=\([0-9.]*\) total_s=\([0-9.]*\).*/\1 \2/p' \
    | awk '{printf "%.3f %.3f\n", $2 - $1, $2}'
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
mbs() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.1f", b / 1e6 / s}'; }

scp_t=() ours_t=() ours_v=()
for i in $(seq "$REPS"); do
  log "round $i/$REPS: scp"
  s=$(scp_once) || exit 1
  scp_t+=("$s")
  log "round $i/$REPS: ours"
  read -r c v < <(ours_once) || exit 1
  [ -n "$c" ] || die "sshcopy printed nothing"
  ours_t+=("$c"); ours_v+=("$v")
  log "  scp ${s}s, ours ${c}s (${v}s verified)"
done
s=$(printf '%s\n' "${scp_t[@]}" | median)
c=$(printf '%s\n' "${ours_t[@]}" | median)
v=$(printf '%s\n' "${ours_v[@]}" | median)
ratio=$(awk -v a="$s" -v b="$c" 'BEGIN {printf "%.0f", 100 * a / b}')
ratio_v=$(awk -v a="$s" -v b="$v" 'BEGIN {printf "%.0f", 100 * a / b}')
echo "SSH copy of a $MIB MiB file on loopback, median of $REPS (seconds, MB/s = 10^6 bytes/s)"
echo "| what | seconds | MB/s | vs scp |"
echo "|---|---|---|---|"
echo "| scp (OpenSSH $(ssh -V 2>&1 | sed 's/^OpenSSH_\([^ ,]*\).*/\1/')) | $s | $(mbs "$s") | 100 % |"
echo "| ours (tqu_ssh_upload, libssh $(pkg-config --modversion libssh)) | $c | $(mbs "$c") | $ratio % |"
echo "| ours + remote sha256 verification | $v | $(mbs "$v") | $ratio_v % |"
echo "target: ours >= 80 % of scp: $([ "$ratio" -ge 80 ] && echo met || echo NOT met)"
