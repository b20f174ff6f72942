#!/usr/bin/env bash
# test_reasons_documented.sh - every reason a step of any workflow can end
# on (the literal reason of each tqu_out() in controller/ whose outcome is
# not DONE or SKIPPED: Blocked, Failed, retried errors, Running, Waiting)
# is named in README.md in backticks, where its remedy is. A reason added
# to the code without a README row fails here. Then a planted source file
# with an undocumented reason must be caught, and one spread over two lines
# too (so the check can fail).
#
# Needs no build and no control plane (tests/run.sh runs it in the unit
# phase); needs perl. Ends with "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh disable=SC1091
. "$here/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# reasons FILE...: the reasons those C files give tqu_out, one per line
reasons() {
  # tqu_out(o, OUTCOME, "Reason", ...): OUTCOME may be a conditional
  # (rc == X ? TQU_OUT_BLOCKED : TQU_OUT_FAILED); only DONE or SKIPPED alone
  # is no stop
  perl -0777 -ne 'while (/\btqu_out\s*\(\s*[^,]+,([^,"]*),\s*"([A-Za-z]+)"/g) {
      my ($out, $r) = ($1, $2);
      print "$r\n" unless $out =~ /^\s*TQU_OUT_(DONE|SKIPPED)\s*$/ }' "$@" |
    sort -u
}

# undocumented README FILE...: the reasons of FILE... that README lacks
undocumented() {
  local readme=$1 r
  shift
  reasons "$@" | while read -r r; do
    grep -qF "\`$r\`" "$readme" || echo "$r"
  done
}

mapfile -t srcs < <(find "$repo/controller" -name '*.c' | sort)
all=$(reasons "${srcs[@]}")
n=$(grep -c . <<<"$all")
e2e_check "the controller's sources give at least 90 reasons ($n)" test "$n" -ge 90
for must in PathNotAllowed UpgradeOutcomeUnknown EtcdUnreachable BackupCorrupt FixsvcOutcomeUnknown; do
  e2e_check "... among them $must" grep -qx "$must" <<<"$all"
done
missing=$(undocumented "$repo/README.md" "${srcs[@]}")
e2e_eq "every reason is in README.md" "" "$missing"

cat > "$tmp/planted.c" <<'EOF'
void f(tqu_outcome *o)
{
    tqu_out(o, TQU_OUT_BLOCKED, "PlantedUndocumented", "x");
    tqu_out(o,
            TQU_OUT_FAILED,
            "PlantedOnTwoLines", "y");
    tqu_out(o, TQU_OUT_DONE, "PlantedDone", "not a stop");
    tqu_out(o, TQU_OUT_SKIPPED, "PlantedSkipped", "not a stop");
    tqu_out(o, rc ? TQU_OUT_BLOCKED : TQU_OUT_FAILED, "PlantedConditional", "z");
}
EOF
got=$(undocumented "$repo/README.md" "$tmp/planted.c" | tr '\n' ' ')
e2e_eq "planted undocumented reasons are caught (one line, two lines, a conditional outcome); DONE/SKIPPED are not stops" \
  "PlantedConditional PlantedOnTwoLines PlantedUndocumented " "$got"
# shellcheck disable=SC2016  # the backticks are README's, not a command
for r in PlantedUndocumented PlantedOnTwoLines PlantedConditional; do
  printf '| `%s` | x | y | z |\n' "$r"
done > "$tmp/README.md"
e2e_eq "... and passes once README has their rows" "" "$(undocumented "$tmp/README.md" "$tmp/planted.c")"

e2e_summary
