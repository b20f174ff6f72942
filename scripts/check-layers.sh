#!/usr/bin/env bash
# check-layers.sh [ROOT] - the include rules of design.md section 7.
#
# Layers, lowest first; a file may include only from its own layer or a
# lower one:
#   0 k8s/                  the Kubernetes client (nothing from controller/)
#   0 etcd/                 the etcd v3 client, beside k8s/ (nothing from k8s/
#                           or controller/); optional folder
#   1 controller/host/
#   2 controller/runtime/
#   3 controller/engine/
#   4 controller/<workflow>/  every other folder directly under controller/;
#                           a workflow may not include another workflow
#   5 controller/*.c *.h    main.c: anything in controller/ and k8s/
#   plugin/                 kubectl-tianqing, beside the layers: only plugin/
#                           and k8s/; nothing outside plugin/ includes it
# Also: k8s/*_int.h are private to k8s/, etcd/*_int.h to etcd/; generated headers (build/gen,
# tqu_version.h) may be included by anyone; an include that resolves to no
# file is an error ("unresolved"); so is an include cycle.
#
# `#include "x"` is resolved like the compiler does with -Ibuild/gen -Ik8s
# -Ietcd -Icontroller: the including file's own folder, build/gen, k8s/,
# etcd/, then controller/ (tqu_version.h counts as generated even before a build).
# Angle-bracket includes are system headers and are ignored, so are
# includes inside comments.
#
# Checks every *.c, *.h, *.S under ROOT/k8s, ROOT/etcd, ROOT/controller and,
# when there is one, ROOT/plugin (ROOT: default the repository). Exit 0 and one summary line on stdout when
# clean; otherwise one line per violation on stderr, the summary on
# stdout, exit 1. Exit 2 on a usage error.
set -euo pipefail
export LC_ALL=C

if [ $# -gt 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  echo "usage: $0 [ROOT]   (ROOT: the folder holding k8s/ and controller/)" >&2
  exit 2
fi
root=${1:-$(dirname "$0")/..}
if [ ! -d "$root/k8s" ] || [ ! -d "$root/controller" ]; then
  echo "check-layers: $root: no k8s/ and controller/ folders to check" >&2
  exit 2
fi
root=$(cd "$root" && pwd)
cd "$root"

# One list, sorted: "T path" for every file of the tree (what an include
# may resolve to), "G path" for the generated headers.
{
  find k8s controller -type f | sed 's/^/T /'
  if [ -d etcd ]; then find etcd -type f | sed 's/^/T /'; fi
  if [ -d plugin ]; then find plugin -type f | sed 's/^/T /'; fi
  if [ -d build/gen ]; then find build/gen -type f | sed 's/^/G /'; fi
} | sort | awk -v root="$root" '
function err(msg) { nviol++; print "check-layers: " msg > "/dev/stderr" }

# a/b/../c/./d -> a/c/d; a leading ".." that climbs out of ROOT is kept
function norm(p,   a, n, i, st, k, out) {
  n = split(p, a, "/"); k = 0
  for (i = 1; i <= n; i++) {
    if (a[i] == "" || a[i] == ".") continue
    if (a[i] == ".." && k > 0 && st[k] != "..") { k--; continue }
    st[++k] = a[i]
  }
  out = ""
  for (i = 1; i <= k; i++) out = out (i > 1 ? "/" : "") st[i]
  return out
}

function exists(p) {
  if (p ~ /^(k8s|etcd|controller|plugin)\//) return (p in tree)
  if (p ~ /^build\/gen\//) return (p in gen)
  if (p !~ /^[A-Za-z0-9_.\/+-]+$/) return 0
  return system("test -f \"" root "/" p "\"") == 0
}

# the include named NAME in file F: the path it resolves to, "" if none
function resolve(f, name,   dir, c) {
  if (name ~ /^\//) return (system("test -f \"" name "\"") == 0) ? name : ""
  dir = f; sub(/\/[^\/]*$/, "", dir)
  c = norm(dir "/" name);          if (exists(c)) return c
  c = norm("build/gen/" name);     if (c ~ /^build\/gen\// && exists(c)) return c
  c = norm("k8s/" name);           if (exists(c)) return c
  c = norm("etcd/" name);          if (exists(c)) return c
  c = norm("controller/" name);    if (exists(c)) return c
  if (name == "tqu_version.h") return "build/gen/tqu_version.h"
  return ""
}

# layer of a path; sets WF to the workflow folder for layer 4, and to
# k8s or etcd for layer 0 (two libraries side by side)
function layer(p,   a, n) {
  WF = ""
  if (p ~ /^k8s\//) { WF = "k8s"; return 0 }
  if (p ~ /^etcd\//) { WF = "etcd"; return 0 }
  if (p ~ /^plugin\//) return 6
  if (p !~ /^controller\//) return -1
  n = split(p, a, "/")
  if (n == 2) return 5
  if (a[2] == "host") return 1
  if (a[2] == "runtime") return 2
  if (a[2] == "engine") return 3
  WF = a[2]; return 4
}

function lname(l, wf) {
  if (l == 0) return wf "/ (layer 0)"
  if (l == 1) return "host/ (layer 1)"
  if (l == 2) return "runtime/ (layer 2)"
  if (l == 3) return "engine/ (layer 3)"
  if (l == 4) return wf "/ (layer 4, a workflow)"
  if (l == 6) return "plugin/ (the kubectl plugin)"
  return "controller/ top level (layer 5)"
}

function who(l, wf) {
  if (l == 0 && wf == "etcd") return "etcd/ (layer 0) may include only from etcd/ (nothing from k8s/ or controller/)"
  if (l == 0) return "k8s/ (layer 0) may include only from k8s/ (nothing from controller/)"
  if (l == 1) return "host/ (layer 1) may include only from host/ and k8s/ (lower layers)"
  if (l == 2) return "runtime/ (layer 2) may include only from runtime/ and host/, k8s/ (lower layers)"
  if (l == 3) return "engine/ (layer 3) may include only from engine/ and runtime/, host/, k8s/ (lower layers)"
  return "a workflow (" wf "/, layer 4) may include only from " wf "/ and engine/, runtime/, host/, k8s/ (lower layers)"
}

# Text of LINE outside comments (and outside nothing else: string and
# character literals are skipped over so "/*" in a string opens nothing).
function code(s,   out, n, i, j, c, d) {
  out = ""
  while (s != "") {
    if (incom) {
      j = index(s, "*/"); if (!j) return out
      s = substr(s, j + 2); incom = 0; out = out " "; continue
    }
    if (!index(s, "/*") && !index(s, "//")) return out s
    n = length(s)
    for (i = 1; i <= n; i++) {
      c = substr(s, i, 1)
      if (c == "\"" || c == "\047") {
        for (j = i + 1; j <= n; j++) {
          d = substr(s, j, 1)
          if (d == "\\") { j++; continue }
          if (d == c) break
        }
        i = j; continue
      }
      if (c == "/" && substr(s, i + 1, 1) == "/") return out substr(s, 1, i - 1)
      if (c == "/" && substr(s, i + 1, 1) == "*") {
        out = out substr(s, 1, i - 1) " "; s = substr(s, i + 2); incom = 1; break
      }
    }
    if (!incom) return out s
  }
  return out
}

function check(f, name, t,   lf, wf, lt, wt, inc) {
  inc = f ": #include \"" name "\""
  if (t == "") {
    err(inc ": unresolved: no such file relative to " substr(f, 1, length(f) - length(base(f))) ", in k8s/ or in controller/")
    return
  }
  inc = inc " -> " t
  if (t ~ /^build\/gen\//) return                     # generated: anyone
  lf = layer(f); wf = WF
  lt = layer(t); wt = WF
  if (lt < 0) {
    err(inc ": a file may include only from k8s/, controller/ and generated headers (build/gen), not a file outside them")
    return
  }
  if (t ~ /^k8s\// && base(t) ~ /_int\.h$/ && f !~ /^k8s\//) {
    err(inc ": " t " is private to k8s/: only files in k8s/ may include it")
    return
  }
  if (t ~ /^etcd\// && base(t) ~ /_int\.h$/ && f !~ /^etcd\//) {
    err(inc ": " t " is private to etcd/: only files in etcd/ may include it")
    return
  }
  if (lf == 6 && lt != 6 && !(lt == 0 && wt == "k8s")) {
    err(inc ": plugin/ (the kubectl plugin) may include only from plugin/ and k8s/, not " lname(lt, wt))
    return
  }
  if (lt == 6 && lf != 6) {
    err(inc ": plugin/ is the kubectl plugin\047s own: only files in plugin/ may include from it")
    return
  }
  if (lf == 6) return
  if (lf == 5 || lt < lf) return
  if (lt == lf) {
    if (lf == 0 && wt != wf)
      err(inc ": " who(lf, wf) ", not " lname(lt, wt))
    if (lf == 4 && wt != wf)
      err(inc ": a workflow (" wf "/) may not include another workflow\047s folder (" wt "/)")
    return
  }
  err(inc ": " who(lf, wf) ", not " lname(lt, wt))
}

function base(p) { sub(/^.*\//, "", p); return p }

function scan(f,   path, line, rc, s, name, t, ln) {
  path = root "/" f; incom = 0; ln = 0
  while ((rc = (getline line < path)) > 0) {
    ln++
    sub(/\r$/, "", line)
    if (!incom && line !~ /include/ && line !~ /\/\*/) continue   # fast path
    s = code(line)
    if (s !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
    sub(/^[ \t]*#[ \t]*include[ \t]*"/, "", s)
    if (!index(s, "\"")) { err(f ":" ln ": malformed #include"); continue }
    name = substr(s, 1, index(s, "\"") - 1)
    nincl++
    t = resolve(f, name)
    check(f, name, t)
    if (t ~ /^(k8s|etcd|controller|plugin)\//) adj[f, ++deg[f]] = t
  }
  if (rc < 0) { print "check-layers: cannot read " f > "/dev/stderr"; bad = 1 }
  close(path)
}

function dfs(u, depth,   k, v, i, chain) {
  color[u] = 1; stk[depth] = u; pos[u] = depth
  for (k = 1; k <= deg[u]; k++) {
    v = adj[u, k]
    if (color[v] == 1) {
      chain = ""
      for (i = pos[v]; i <= depth; i++) chain = chain stk[i] " -> "
      err("include cycle: " chain v)
    } else if (!color[v]) dfs(v, depth + 1)
  }
  color[u] = 2
}

{
  kind = substr($0, 1, 1); p = substr($0, 3)
  if (kind == "G") { gen[p] = 1; next }
  tree[p] = 1
  if (p ~ /\.(c|h|S)$/) files[++nfiles] = p
}

END {
  for (i = 1; i <= nfiles; i++) scan(files[i])
  for (i = 1; i <= nfiles; i++) if (!color[files[i]]) dfs(files[i], 1)
  if (bad) exit 2
  if (nviol) {
    printf "check-layers: %d files, %d includes, %d violation%s\n", nfiles, nincl, nviol, nviol == 1 ? "" : "s"
    exit 1
  }
  printf "check-layers: %d files, %d includes, no violation\n", nfiles, nincl
}'
