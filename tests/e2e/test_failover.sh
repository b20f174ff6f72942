#!/usr/bin/env bash
# Two controllers with --leader-elect on one Lease, with distinct identities
# so the API server's audit log shows who wrote: A uses the client
# certificate of tqu-cert-user, B the token of tqu-token-user.
#
#  1. Only one acts: A leads; B logs no "became the leader" and writes
#     nothing (not even the Lease) while A holds it.
#  2. A stopped (SIGSTOP) past the renew deadline: B takes over; a resource
#     created meanwhile is handled by B; another is changed right before A
#     is resumed; resumed, A exits non-zero with "lost the leadership" and
#     writes nothing (its log and the audit log).
#  3. kill -9 of the leader: the standby leads within 20 s of the kill and
#     handles a new resource.
#  4. SIGTERM of the leader: exit 0, the Lease released (empty holder), the
#     standby leads within seconds.
# Conditions passed to eval are expanded when evaluated (bport, marks):
# shellcheck disable=SC2016,SC2034
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
e2e_require_cluster
: "${TQU_BIN:?TQU_BIN is set by tests/run.sh}"
tmp=$(mktemp -d)
# shellcheck source-path=SCRIPTDIR source=runtime_lib.sh
. "$here/runtime_lib.sh"
trap rt_cleanup EXIT

ns=le-$$
k() { kubectl -n "$ns" "$@"; }
rt_namespace "$ns"
LE=(--namespace "$ns" --leader-elect --leader-election-namespace "$ns")
A_KC=$TQU_KUBECONFIG_CERT A_USER=tqu-cert-user
B_KC=$TQU_KUBECONFIG_TOKEN B_USER=tqu-token-user
LEADS='.msg == "became the leader"'
holder() { k get lease tianqing-upgrade-controller -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
# writes USER OFFSET: tianqingupgrades/Events writes (any outcome) by USER
tqu_writes() { rt_audit_writes "$2" "$1" '.objectRef.resource == "tianqingupgrades" or .objectRef.resource == "events"'; }

# ------------------------------------------------------ 1. only one acts
mark0=$(rt_audit_mark)
rt_start a "$A_KC" "${LE[@]}"
if ! e2e_eventually 30 grep -q '"msg":"became the leader"' "$tmp/a.log"; then
  e2e_not_ok "A becomes the leader" "$(rt_dump a)"
  e2e_summary; exit $?
fi
e2e_ok "A becomes the leader"
rt_start b "$B_KC" "${LE[@]}"
bport=$(rt_port b)
e2e_check "B is ready as a standby" eval 'curl -fsS "http://127.0.0.1:$bport/readyz" | grep -q standby'
rt_tqu "$ns" x1
if e2e_eventually 20 rt_observed "$ns" x1; then e2e_ok "x1 observed"
else e2e_not_ok "x1 observed" "$(rt_dump a)"; fi
sleep 3   # B had time to act, if it wrongly would
e2e_eq "only A logs \"became the leader\"" "1 0" "$(rt_count a "$LEADS") $(rt_count b "$LEADS")"
e2e_check "A wrote x1's status" eval '[ -n "$(rt_audit_writes "$mark0" "$A_USER" ".objectRef.resource == \"tianqingupgrades\" and .objectRef.subresource == \"status\"")" ]'
e2e_eq "B wrote nothing (not even the Lease)" "" "$(rt_audit_writes "$mark0" "$B_USER")"
e2e_eq "B logged no reconcile" 0 "$(rt_count b '.msg == "reconciling" or .msg == "observed"')"

# ---------------------------- 2. A stopped past the renew deadline
a_observed=$(rt_count a '.msg == "observed"')
a_lines=$(wc -l < "$tmp/a.log")
t_stop=$(rt_now)
kill -STOP "$(rt_pid a)"
rt_tqu "$ns" x2            # created while A is stopped
if e2e_eventually 30 grep -q '"msg":"became the leader"' "$tmp/b.log"; then
  t_b=$(rt_ts_of b "$LEADS")
  STOP_HANDOVER=$(rt_sub "$t_b" "$t_stop")
  e2e_ok "A stopped: B takes over ($STOP_HANDOVER s after SIGSTOP)"
else
  e2e_not_ok "A stopped: B takes over" "$(rt_dump b)"
fi
if e2e_eventually 20 rt_observed "$ns" x2; then e2e_ok "A stopped: x2 (created meanwhile) observed"
else e2e_not_ok "A stopped: x2 (created meanwhile) observed" "$(rt_dump b)"; fi
# keep A stopped about 17 s in all, then change x1 right before resuming
while ! rt_le 17 "$(rt_since "$t_stop")"; do sleep 0.2; done
mark1=$(rt_audit_mark)
k patch tqu x1 --type merge -p '{"spec":{"machines":9}}' >/dev/null
kill -CONT "$(rt_pid a)"
if rt_wait_exit a 20; then
  STOP_EXIT=$RT_WAITED
  e2e_check "A resumed: exits non-zero (exit $RT_RC, $RT_WAITED s after SIGCONT)" test "$RT_RC" -ne 0
else
  e2e_not_ok "A resumed: exits" "still running after 20 s" "$(rt_dump a)"
fi
e2e_eq "A resumed: logs \"lost the leadership\"" 1 "$(rt_count a '.msg | startswith("lost the leadership")')"
e2e_eq "A resumed: no \"observed\" line after SIGCONT" "$a_observed" "$(rt_count a '.msg == "observed"')"
e2e_eq "A resumed: began no reconcile after SIGCONT" 0 \
  "$(tail -n +"$((a_lines + 1))" "$tmp/a.log" | jq -cR 'fromjson? | select(.msg == "reconciling")' | wc -l)"
e2e_eq "A resumed: wrote nothing (audit log)" "" "$(rt_audit_writes "$mark1" "$A_USER")"
if e2e_eventually 20 rt_observed "$ns" x1; then e2e_ok "x1's change observed (by B)"
else e2e_not_ok "x1's change observed (by B)" "$(rt_dump b)"; fi
e2e_check "x1's new status written by B" eval '[ -n "$(tqu_writes "$B_USER" "$mark1")" ]'

# ------------------------------------------------- 3. kill -9 of the leader
rt_start a2 "$A_KC" "${LE[@]}"
e2e_eventually 20 grep -q '"msg":"waiting for the leadership"' "$tmp/a2.log"
sleep 2.5   # A2 has seen the Lease being renewed
t_kill=$(rt_now)
kill -KILL "$(rt_pid b)"
{ wait "$(rt_pid b)"; } 2>/dev/null
if e2e_eventually 30 grep -q '"msg":"became the leader"' "$tmp/a2.log"; then
  KILL_HANDOVER=$(rt_sub "$(rt_ts_of a2 "$LEADS")" "$t_kill")
  e2e_check "kill -9: the standby leads within 20 s ($KILL_HANDOVER s)" rt_le "$KILL_HANDOVER" 20
else
  e2e_not_ok "kill -9: the standby leads" "$(rt_dump a2)"
fi
rt_tqu "$ns" x3
if e2e_eventually 20 rt_observed "$ns" x3; then e2e_ok "kill -9: x3 observed by the new leader"
else e2e_not_ok "kill -9: x3 observed by the new leader" "$(rt_dump a2)"; fi

# ----------------------------------------- 4. clean shutdown hands over
rt_start b2 "$B_KC" "${LE[@]}"
e2e_eventually 20 grep -q '"msg":"waiting for the leadership"' "$tmp/b2.log"
kill -TERM "$(rt_pid a2)"
rt_wait_exit a2 30
t_exit=$(rt_now)
e2e_eq "SIGTERM: the leader exits 0" 0 "$RT_RC"
h=$(holder)
if [ -z "$h" ] || ! grep -q "$h" "$tmp/a2.log"; then e2e_ok "SIGTERM: the Lease was released (holder now: '${h}')"
else e2e_not_ok "SIGTERM: the Lease was released" "holder still $h"; fi
if e2e_eventually 15 grep -q '"msg":"became the leader"' "$tmp/b2.log"; then
  TERM_HANDOVER=$(rt_sub "$(rt_ts_of b2 "$LEADS")" "$t_exit")
  e2e_check "SIGTERM: the standby leads within 5 s of the exit ($TERM_HANDOVER s)" rt_le "$TERM_HANDOVER" 5
else
  e2e_not_ok "SIGTERM: the standby leads" "$(rt_dump b2)"
fi
rt_tqu "$ns" x4
if e2e_eventually 20 rt_observed "$ns" x4; then e2e_ok "SIGTERM: x4 observed by the new leader"
else e2e_not_ok "SIGTERM: x4 observed by the new leader" "$(rt_dump b2)"; fi
kill -TERM "$(rt_pid b2)"
rt_wait_exit b2 30
e2e_eq "the last leader exits 0 on SIGTERM" 0 "$RT_RC"

echo "# measured: takeover after SIGSTOP ${STOP_HANDOVER:-?} s (the stopped leader exited" \
  "${STOP_EXIT:-?} s after SIGCONT), after kill -9 ${KILL_HANDOVER:-?} s, after SIGTERM ${TERM_HANDOVER:-?} s"
e2e_summary
