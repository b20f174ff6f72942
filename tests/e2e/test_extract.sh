#!/usr/bin/env bash
# The vendor processes in the in-cluster setup, end to end:
#   - every vendor command runs through --exec-prefix "nsenter -t <pid> -m --"
#     (a new mount namespace, here the test's own, resets the working folder
#     to /): darwin-client and "sh update.sh" still run in their folders, so
#     the whole upgrade succeeds (before: update.sh not found, 127);
#   - the package extraction (Preflight, spec.packages.archive) can be
#     stopped: SIGTERM while a long tar runs and the controller exits within
#     seconds, tar's process group killed (before: shutdown waited on tar);
#     tar wrote only into a temporary folder beside the package's files,
#     which the next controller removes before it extracts again into a
#     fresh one and moves the files into place;
#   - update.sh ran exactly once.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/upgrade_lib.sh"
e2e_require_cluster
: "${TQU_BIN:?}" "${TQU_REPO:?}"
tmp=$(mktemp -d)
trap 'up_cleanup; rm -rf "$tmp"' EXIT

if ! nsenter -t $$ -m -- true 2>/dev/null; then
  echo "nsenter into our own mount namespace is not permitted here (needs root): skipped"
  e2e_ok "skipped: nsenter not permitted"
  e2e_summary
  exit $?
fi

ns=tqu-extract
up_world "$tmp" --archive --scenario update_seconds=1 || { e2e_not_ok "fixtures"; e2e_summary; exit 1; }
up_secret "$ns"
up_kubelet_start

# A tar that is long the first time: it marks its target (-C) and waits;
# later ones are the real tar.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/tar" <<EOF
#!/bin/sh
if [ ! -e "$tmp/tar.slow" ]; then
  : >"$tmp/tar.slow"
  for a in "\$@"; do [ "\$prev" = -C ] && : >"\$a/PARTIAL"; prev=\$a; done
  echo \$\$ >"$tmp/tar.pid"
  exec sleep 300
fi
exec /bin/tar "\$@"
EOF
chmod 0755 "$tmp/bin/tar"
prefix="nsenter -t $$ -m --"

PATH="$tmp/bin:$PATH" up_controller ctl1 --exec-prefix "$prefix"
up_apply "$ns" to-2800 "  packages: {root: $PACKAGES_ROOT, archive: $(basename "$ARCHIVE")}"
if e2e_eventually 60 test -s "$tmp/tar.pid"; then e2e_ok "the (long) tar started"
else e2e_not_ok "the (long) tar started" "$(tail -5 "$UP_DIR/ctl1.log")"; fi
tarpid=$(cat "$tmp/tar.pid" 2>/dev/null)

t0=$(date +%s%N)
up_stop ctl1 TERM
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -lt 15000 ]; then e2e_ok "SIGTERM during the extraction: the controller exited in ${ms} ms"
else e2e_not_ok "SIGTERM during the extraction: the controller exited in ${ms} ms (limit 15 s)"; fi
if e2e_eventually 5 sh -c "! kill -0 $tarpid"; then e2e_ok "tar was killed"
else e2e_not_ok "tar was killed" "pid $tarpid still runs"; kill -KILL "$tarpid" 2>/dev/null; fi
left=$(find "$NEW_DIR" -maxdepth 1 -name '.tqu-extract-*' | wc -l)
e2e_eq "tar wrote only into one temporary folder" 1 "$left"
e2e_check "nothing of it in the package folder itself" test ! -e "$NEW_DIR/PARTIAL"

PATH="$tmp/bin:$PATH" up_controller ctl2 --exec-prefix "$prefix"
e2e_check "the upgrade completes through the prefix (kubectl wait --for=condition=Ready)" \
  kubectl -n "$ns" wait --for=condition=Ready tqu/to-2800 --timeout=120s
json=$(kubectl -n "$ns" get tqu to-2800 -o json)
e2e_eq "phase Succeeded" Succeeded "$(jq -r .status.phase <<<"$json")"
e2e_eq "no temporary folder left" 0 "$(find "$NEW_DIR" -maxdepth 1 -name '.tqu-extract-*' | wc -l)"
e2e_eq "no file of the stopped tar anywhere" "" "$(find "$NEW_DIR" -name PARTIAL)"
e2e_check "update.sh extracted into place" test -f "$NEW_DIR/tq_paas/skylar/skylar_linuxserver_client/plan_client/update.sh"
e2e_eq "update.sh ran exactly once" 1 "$(up_update_calls)"
e2e_match "update.sh ran in its folder through the prefix" \
  "^nsenter -t $$ -m -- /bin/sh -c 'cd -- \"\\\$1\" && shift && exec \"\\\$@\"' tqu-cd [^ ]*/plan_client sh update.sh " \
  "$(jq -r .status.upgrade.command <<<"$json")"
e2e_eq "update.sh's working folder" "$NEW_DIR/tq_paas/skylar/skylar_linuxserver_client/plan_client" \
  "$(cat "$TQU_FAKE_RECORD/update.sh.1.cwd" 2>/dev/null)"
up_stop ctl2 TERM
kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1

e2e_summary
exit $?
