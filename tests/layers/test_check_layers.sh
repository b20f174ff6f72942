#!/usr/bin/env bash
# test_check_layers.sh - scripts/check-layers.sh (design.md section 7) on
# copies of k8s/ and controller/: the copy as it is must pass; each
# deliberate fault, made in a fresh copy, must fail with exit 1 and exactly
# one new line on stderr naming the file and the rule. "New" means not in
# the output on the unchanged copy, so the fault checks keep their meaning
# even while the tree itself still has a violation.
#
# Needs no build and no control plane. Prints "ok - ..." / "not ok - ..."
# per check and ends with "N passed, M failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
checker=$repo/scripts/check-layers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
ok()    { echo "ok - $1"; passed=$((passed + 1)); }
notok() {
  echo "not ok - $1"; failed=$((failed + 1))
  [ -s "$tmp/out" ] && sed 's/^/#   stdout: /' "$tmp/out"
  [ -s "$tmp/err" ] && sed 's/^/#   stderr: /' "$tmp/err"
  return 0
}

# run DIR: the checker on DIR; rc, $tmp/out, $tmp/err
run() { "$checker" "$1" > "$tmp/out" 2> "$tmp/err"; rc=$?; }

mkdir "$tmp/base"
cp -r "$repo/k8s" "$repo/controller" "$tmp/base/"
[ -d "$repo/etcd" ] && cp -r "$repo/etcd" "$tmp/base/"
[ -d "$repo/plugin" ] && cp -r "$repo/plugin" "$tmp/base/"

# --- the tree as it is -------------------------------------------------
t0=${EPOCHREALTIME/[.,]/}
run "$tmp/base"; base_rc=$rc
t1=${EPOCHREALTIME/[.,]/}
cp "$tmp/err" "$tmp/base.err"
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] &&
   grep -qE '^check-layers: [0-9]+ files, [0-9]+ includes, no violation$' "$tmp/out"; then
  ok "the copy of k8s/ and controller/ passes: $(cat "$tmp/out")"
else
  notok "the copy of k8s/ and controller/ passes (exit $rc)"
fi
ms=$(( (t1 - t0) / 1000 ))
if [ "$ms" -lt 2000 ]; then ok "the check takes under 2 s (${ms} ms)"
else notok "the check takes under 2 s (${ms} ms)"; fi

# --- helpers for the faults --------------------------------------------
# pick DIR: the first .c file of folder DIR of the case (made if none)
pick() {
  local f
  f=$(cd "$cdir" && find "$1" -maxdepth 1 -name '*.c' | LC_ALL=C sort | head -n1)
  if [ -z "$f" ]; then mkdir -p "$cdir/$1"; f=$1/zz_fake.c; : > "$cdir/$f"; fi
  echo "$f"
}
# need FILE: make sure FILE exists in the case (an empty one will do)
need() { [ -e "$cdir/$1" ] || { mkdir -p "$(dirname "$cdir/$1")"; : > "$cdir/$1"; }; }
# add FILE LINE...: append lines to FILE of the case
add() { local f=$1; shift; printf '%s\n' "$@" >> "$cdir/$f"; }

fresh() { rm -rf "$tmp/case"; cp -r "$tmp/base" "$tmp/case"; cdir=$tmp/case; }

# expect_fault NAME STRING...: the checker on the case exits 1 and stderr
# has exactly one line more than on the unchanged copy, holding every STRING
expect_fault() {
  local name=$1 s new n; shift
  run "$cdir"
  new=$(LC_ALL=C comm -13 <(LC_ALL=C sort "$tmp/base.err") <(LC_ALL=C sort "$tmp/err"))
  n=$(printf '%s' "$new" | grep -c .)
  if [ "$rc" -ne 1 ]; then notok "$name (exit $rc, want 1)"; return; fi
  if [ "$n" -ne 1 ]; then notok "$name ($n new lines on stderr, want 1)"; return; fi
  for s in "$@"; do
    if ! grep -qF -- "$s" <<< "$new"; then notok "$name (no \"$s\" in: $new)"; return; fi
  done
  ok "$name"
}

# expect_clean NAME: the changes to the case add nothing to the output
expect_clean() {
  run "$cdir"
  if [ "$rc" -ne "$base_rc" ]; then notok "$1 (exit $rc, want $base_rc)"
  elif ! cmp -s "$tmp/err" "$tmp/base.err"; then notok "$1 (stderr changed)"
  else ok "$1"; fi
}

# --- the faults ---------------------------------------------------------
fresh; f=$(pick controller/host); need controller/runtime/log.h
add "$f" '#include "runtime/log.h"'
expect_fault "a host file including runtime/log.h fails" \
  "check-layers: $f: #include \"runtime/log.h\" -> controller/runtime/log.h: " \
  "host/ (layer 1) may include only from host/ and k8s/ (lower layers), not runtime/ (layer 2)"

fresh; f=$(pick k8s); need controller/runtime/log.h
add "$f" '#include "runtime/log.h"'
expect_fault "k8s/ including a controller header fails" \
  "check-layers: $f: #include \"runtime/log.h\" -> controller/runtime/log.h: " \
  "k8s/ (layer 0) may include only from k8s/ (nothing from controller/), not runtime/ (layer 2)"

fresh; f=$(pick controller/upgrade); need controller/tuning/tune.h
add "$f" '#include "tuning/tune.h"'
expect_fault "upgrade/ including from another workflow (tuning/) fails" \
  "check-layers: $f: #include \"tuning/tune.h\" -> controller/tuning/tune.h: " \
  "a workflow (upgrade/) may not include another workflow's folder (tuning/)"

fresh; f=$(pick controller/runtime); need k8s/k8s_int.h
add "$f" '#include "k8s_int.h"'
expect_fault "a runtime file including k8s_int.h fails" \
  "check-layers: $f: #include \"k8s_int.h\" -> k8s/k8s_int.h: " \
  "k8s/k8s_int.h is private to k8s/: only files in k8s/ may include it"

fresh
add controller/engine/zz_cyc_a.h '#include "zz_cyc_b.h"'
add controller/engine/zz_cyc_b.h '#include "zz_cyc_a.h"'
expect_fault "a two-header include cycle fails" \
  "check-layers: include cycle: controller/engine/zz_cyc_a.h -> controller/engine/zz_cyc_b.h -> controller/engine/zz_cyc_a.h"

fresh; f=$(pick controller/engine)
add "$f" '#include "no_such_header.h"'
expect_fault "an unresolved include fails" \
  "check-layers: $f: #include \"no_such_header.h\": unresolved"

fresh; f=$(pick controller/host); need controller/runtime/log.h
add "$f" 'static const char *zz_glob = "/tmp/*"; /* a comment */' '#include "runtime/log.h"'
expect_fault "an include after a \"/*\" inside a string is still checked" \
  "check-layers: $f: #include \"runtime/log.h\" -> controller/runtime/log.h: host/ (layer 1)"

# etcd/ is layer 0 beside k8s/: neither includes the other
fresh; f=$(pick etcd); need k8s/k8s.h
add "$f" '#include "k8s.h"'
expect_fault "etcd/ including k8s.h fails" \
  "check-layers: $f: #include \"k8s.h\" -> k8s/k8s.h: " \
  "etcd/ (layer 0) may include only from etcd/ (nothing from k8s/ or controller/), not k8s/ (layer 0)"

fresh; f=$(pick etcd); need controller/runtime/log.h
add "$f" '#include "runtime/log.h"'
expect_fault "etcd/ including a controller header fails" \
  "check-layers: $f: #include \"runtime/log.h\" -> controller/runtime/log.h: " \
  "etcd/ (layer 0) may include only from etcd/ (nothing from k8s/ or controller/), not runtime/ (layer 2)"

fresh; f=$(pick k8s); need etcd/etcd.h
add "$f" '#include "etcd.h"'
expect_fault "k8s/ including etcd.h fails" \
  "check-layers: $f: #include \"etcd.h\" -> etcd/etcd.h: " \
  "k8s/ (layer 0) may include only from k8s/ (nothing from controller/), not etcd/ (layer 0)"

fresh; f=$(pick controller/runtime); need etcd/etcd_int.h
add "$f" '#include "etcd_int.h"'
expect_fault "a runtime file including etcd_int.h fails" \
  "check-layers: $f: #include \"etcd_int.h\" -> etcd/etcd_int.h: " \
  "etcd/etcd_int.h is private to etcd/: only files in etcd/ may include it"

fresh; need etcd/etcd.h; need etcd/etcd_int.h
add "$(pick controller/host)" '#include "etcd.h"'
add "$(pick controller/upgrade)" '#include "etcd.h"'
add "$(pick etcd)" '#include "etcd_int.h"' '#include "etcd.h"'
expect_clean "controller/ including etcd.h, and etcd/ its own etcd_int.h, pass"

fresh; f=$(pick plugin); need controller/engine/engine.h
add "$f" '#include "engine/engine.h"'
expect_fault "the kubectl plugin including a controller header fails" \
  "check-layers: $f: #include \"engine/engine.h\" -> controller/engine/engine.h: " \
  "plugin/ (the kubectl plugin) may include only from plugin/ and k8s/, not engine/ (layer 3)"

fresh; f=$(pick controller/runtime); need plugin/render.h
add "$f" '#include "../../plugin/render.h"'
expect_fault "the controller including from plugin/ fails" \
  "check-layers: $f: #include \"../../plugin/render.h\" -> plugin/render.h: " \
  "plugin/ is the kubectl plugin's own: only files in plugin/ may include from it"

# --- what is allowed ----------------------------------------------------
fresh
add controller/host/zz_fake.h '#include "k8s.h"'
need k8s/k8s.h
add "$(pick controller/runtime)" '#include "host/zz_fake.h"'
add "$(pick controller/engine)" '#include "../host/zz_fake.h"'
add "$(pick controller/upgrade)" '#include "host/zz_fake.h"' '#include "tqu_version.h"'
add controller/main.c '#include "host/zz_fake.h"'
need k8s/k8s_int.h; add "$(pick k8s)" '#include "k8s_int.h"'
expect_clean "includes down a layer, through ../, of tqu_version.h and k8s_int.h within k8s/ pass"

fresh; need plugin/zz_own.h; need k8s/k8s.h
add "$(pick plugin)" '#include "zz_own.h"' '#include "k8s.h"' '#include "tqu_version.h"'
expect_clean "the kubectl plugin including its own headers, k8s.h and tqu_version.h passes"

fresh; f=$(pick controller/host)
add "$f" '/* #include "runtime/log.h" */' '// #include "runtime/log.h"' \
  '/*' '#include "runtime/log.h"' '*/' '#include <runtime/log.h>'
expect_clean "includes in comments and <...> includes are ignored"

mkdir "$tmp/empty"
"$checker" "$tmp/empty" > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" -eq 2 ]; then ok "a folder without k8s/ and controller/ is a usage error (exit 2)"
else notok "a folder without k8s/ and controller/ is a usage error (exit $rc, want 2)"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
