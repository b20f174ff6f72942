# shellcheck shell=bash
# Shared helpers for the end-to-end scripts; source it (bash).
#
# Every check prints one line, "ok - <description>" or
# "not ok - <description>", the latter followed by its details as "#   ..."
# lines; e2e_summary prints "N passed, M failed" and returns 1 if any check
# failed (or none ran), so a script can end with `e2e_summary; exit $?`.
#
#   e2e_ok DESC / e2e_not_ok DESC [DETAIL...]   record a result
#   e2e_check DESC CMD...           ok if CMD succeeds (its output shown if not)
#   e2e_check_fails DESC CMD...     ok if CMD fails
#   e2e_eq DESC EXPECTED ACTUAL     ok if the strings are equal
#   e2e_match DESC REGEX TEXT       ok if a line of TEXT matches the one-line extended
#                                   REGEX (grep -E); a REGEX of several lines is refused
#                                   (grep would take its lines as alternatives)
#   e2e_match_lines DESC REGEXES TEXT  ok if TEXT has as many lines as REGEXES and
#                                   line i matches line i of REGEXES whole
#   e2e_eventually SECONDS CMD...   retry CMD every 0.2 s until it succeeds (status only)
#   e2e_require_cluster             exit 2 unless run under tests/cluster/with-cluster.sh

E2E_PASSED=0
E2E_FAILED=0

e2e_ok() {
  E2E_PASSED=$((E2E_PASSED + 1))
  printf 'ok - %s\n' "$1"
}

e2e_not_ok() {
  local desc=$1
  shift
  E2E_FAILED=$((E2E_FAILED + 1))
  printf 'not ok - %s\n' "$desc"
  local d
  for d in "$@"; do
    printf '%s\n' "$d" | sed 's/^/#   /'
  done
}

e2e_check() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then e2e_ok "$desc"
  else e2e_not_ok "$desc" "command: $*" "$out"; fi
}

e2e_check_fails() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then e2e_not_ok "$desc" "command succeeded, expected a failure: $*" "$out"
  else e2e_ok "$desc"; fi
}

e2e_eq() {
  if [ "$2" = "$3" ]; then e2e_ok "$1"
  else e2e_not_ok "$1" "expected: $2" "actual:   $3"; fi
}

e2e_match() {
  if [[ $2 == *$'\n'* ]]; then
    e2e_not_ok "$1" "e2e_match: a pattern of several lines would match any one of them: use e2e_match_lines" "$2"
  elif printf '%s\n' "$3" | grep -Eq -- "$2"; then e2e_ok "$1"
  else e2e_not_ok "$1" "expected to match: $2" "actual:" "$3"; fi
}

e2e_match_lines() {
  local i ok=1 r re tx
  mapfile -t re <<<"$2"
  mapfile -t tx <<<"$3"
  [ "${#re[@]}" -eq "${#tx[@]}" ] || ok=0
  for i in "${!re[@]}"; do
    r=${re[$i]#^}
    [[ ${tx[$i]-} =~ ^${r%\$}$ ]] || ok=0
  done
  if [ "$ok" = 1 ]; then e2e_ok "$1"; else e2e_not_ok "$1" "expected lines matching:" "$2" "actual:" "$3"; fi
}

e2e_eventually() {
  local secs=$1 deadline
  shift
  deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

e2e_require_cluster() {
  local v
  for v in TQU_CLUSTER_DIR TQU_API_SERVER TQU_CA_FILE KUBECONFIG; do
    if [ -z "${!v:-}" ]; then
      echo "$v is not set: run under tests/cluster/with-cluster.sh" >&2
      exit 2
    fi
  done
}

e2e_summary() {
  printf '%d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
  [ "$E2E_FAILED" -eq 0 ] && [ "$E2E_PASSED" -gt 0 ]
}
