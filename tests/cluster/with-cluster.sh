#!/usr/bin/env bash
# with-cluster.sh CMD [ARGS...]: run CMD against a fresh, private control plane.
#
# Makes a folder with mktemp -d, brings etcd and kube-apiserver up in it
# (cluster.sh up), runs CMD with the variables of DIR/env (TQU_*, KUBECONFIG,
# ETCDCTL_*), then always stops both and removes the folder, whatever way this
# script ends; exits with CMD's status (128+n when ended by signal n). On
# failure the last 30 lines of the kube-apiserver and etcd logs go to stderr.
# TQU_KEEP_CLUSTER=1 keeps the folder (servers stopped) and prints where.
#
# This process owns the cluster: it holds an exclusive flock on
# DIR/owner.lock for its whole life, never passes that descriptor on, and
# names the file to `cluster.sh up` (TQU_CLUSTER_OWNER_LOCK). The servers'
# keepers wait for that lock, so when this process ends, even by SIGKILL, the
# kernel releases it and the keepers stop the servers (see cluster.sh). CMD runs with `setpriv --pdeathsig TERM`, so it is told too.
# Folders left by an earlier run that was SIGKILLed are removed on start.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=$here/cluster.sh

if [ $# -lt 1 ]; then
  echo "usage: with-cluster.sh CMD [ARGS...]" >&2
  exit 2
fi

tmp=${TMPDIR:-/tmp}

# Leftovers of runs that could not clean up (SIGKILL): owner gone, not kept.
for old in "$tmp"/tqu-cluster.*; do
  if [ ! -d "$old" ] || [ ! -e "$old/owner.lock" ] || [ -e "$old/kept" ]; then continue; fi
  [ -n "$(find "$old/owner.lock" -mmin +1 2>/dev/null)" ] || continue
  flock -n -x "$old/owner.lock" true 2>/dev/null || continue
  "$cluster" down "$old" >/dev/null 2>&1 || true
  rm -rf "$old"
done

dir=$(mktemp -d "$tmp/tqu-cluster.XXXXXX") || exit 1
exec 9>"$dir/owner.lock"
flock -x 9

child=

show_logs() {
  local f
  for f in apiserver etcd; do
    [ -s "$dir/$f.log" ] || continue
    echo "==> last 30 lines of $dir/$f.log <==" >&2
    tail -n 30 "$dir/$f.log" >&2
  done
}

finish() {
  local rc=$1
  trap '' INT TERM HUP
  trap - EXIT
  if [ "$rc" != 0 ]; then show_logs; fi
  if ! "$cluster" down "$dir" 9>&-; then [ "$rc" != 0 ] || rc=1; fi
  if [ "${TQU_KEEP_CLUSTER:-0}" = 1 ]; then
    touch "$dir/kept"
    echo "with-cluster: kept $dir (servers stopped; 'cluster.sh up $dir' starts them again)" >&2
  else
    rm -rf "$dir"
  fi
  exit "$rc"
}

# A signal: pass it on to the running child (cluster.sh up, or CMD), give it
# a moment to clean up, then finish.
# shellcheck disable=SC2317  # a trap handler
on_signal() {
  local sig=$1 code=$2 i
  trap '' INT TERM HUP
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  echo "with-cluster: interrupted by SIG$sig" >&2
  finish "$code"
}

trap 'finish $?' EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# Children run in the background and we `wait`: a trapped signal interrupts
# `wait` at once, where it would wait for a foreground child to finish.
TQU_CLUSTER_OWNER_LOCK=$dir/owner.lock "$cluster" up "$dir" 9>&- </dev/null &
child=$!
wait "$child"; rc=$?
child=
if [ "$rc" != 0 ]; then
  echo "with-cluster: cluster.sh up failed ($rc)" >&2
  finish "$rc"
fi

# shellcheck disable=SC1091
. "$dir/env"
setpriv --pdeathsig TERM -- "$@" 9>&- <&0 &
child=$!
wait "$child"; rc=$?
child=
finish "$rc"
