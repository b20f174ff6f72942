#!/usr/bin/env bash
# Builds kube-apiserver 1.20.2 from Debian's `kubernetes` source package, once
# per machine, into a cache outside the checkout, and prints the binary's path.
#
# design.md section 5: add a deb-src twin of the existing Debian apt entry,
# `apt-get source kubernetes`, replace the vendored modern-go/reflect2 1.0.1
# (crashes under Go 1.19) with Debian's 1.0.2, and build with
# `make WHAT=cmd/kube-apiserver` (GOPATH inside the tree, CGO off).
#
# Also patches the vendored go-openapi/validate type.go: under Go >= 1.16 its
# zero-value check (`reflect.DeepEqual(reflect.Zero(...), reflect.ValueOf(...))`)
# is true for "", so a custom resource (or a CRD default) holding an empty
# string is refused as "null" (kubernetes#99804; upstream fix kube-openapi#230,
# in Kubernetes 1.20.5, which keeps only the `data == nil` test).
#
# The binary's recipe revision is kept beside it ($bin.recipe): a binary built
# by an older recipe is rebuilt.
#
# Cache: $TQU_CACHE (default /var/cache/tianqing-upgrade-controller). The
# build runs in a scratch folder and the binary is moved in atomically, so an
# interrupted build never leaves a half-written binary behind.
set -euo pipefail

cache=${TQU_CACHE:-/var/cache/tianqing-upgrade-controller}
bin=$cache/kube-apiserver-1.20.2
recipe=2   # 1: reflect2 swap; 2: + go-openapi zero-value fix
current() { [ -x "$bin" ] && [ "$(cat "$bin.recipe" 2>/dev/null)" = "$recipe" ]; }
if current; then echo "$bin"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if current; then echo "$bin"; exit 0; fi

log=$cache/build-kube-apiserver.log
echo "build-kube-apiserver: building kube-apiserver 1.20.2 once (about 5 minutes); log: $log" >&2

# deb-src twin of every Debian entry (same URIs, suites, components, key).
src=/etc/apt/sources.list.d/tqu-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && \
   ! grep -qs '^deb-src ' /etc/apt/sources.list; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$src"
  elif [ -f /etc/apt/sources.list ]; then
    grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
      > /etc/apt/sources.list.d/tqu-deb-src.list
  else
    echo "build-kube-apiserver: no Debian apt entry found to twin" >&2; exit 1
  fi
  apt-get update -qq >>"$log" 2>&1
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq kubernetes >>"$log" 2>&1 || { apt-get update -qq >>"$log" 2>&1; apt-get source -qq kubernetes >>"$log" 2>&1; }
tree=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[ -n "$tree" ] || { echo "build-kube-apiserver: apt-get source kubernetes gave no tree; see $log" >&2; exit 1; }
tree=$(cd "$tree" && pwd)

r2new=/usr/share/gocode/src/github.com/modern-go/reflect2
r2old=$tree/vendor/github.com/modern-go/reflect2
[ -d "$r2new" ] || { echo "build-kube-apiserver: $r2new missing (golang-github-modern-go-reflect2-dev)" >&2; exit 1; }
if [ -d "$r2old" ]; then
  find "$r2old" -maxdepth 1 \( -name '*.go' -o -name '*.s' \) -delete
  cp "$r2new"/*.go "$r2old"/
  ls "$r2new"/*.s >/dev/null 2>&1 && cp "$r2new"/*.s "$r2old"/
fi

# Go >= 1.16: an empty string must not count as null (see the header).
zero='data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))'
zfiles=$(grep -rlF --include='*.go' "$zero" "$tree/vendor" || true)
for zv in $zfiles; do
  # (BRE: parentheses and | are literal)
  sed -i 's/data == nil || reflect\.DeepEqual(reflect\.Zero(reflect\.TypeOf(data)), reflect\.ValueOf(data))/data == nil/' "$zv"
  ! grep -qF "$zero" "$zv" || { echo "build-kube-apiserver: could not patch $zv" >&2; exit 1; }
  echo "build-kube-apiserver: patched the zero-value check in $zv" >>"$log"
done
[ -n "$zfiles" ] || echo "build-kube-apiserver: no zero-value check to patch (already fixed?)" >>"$log"

cd "$tree"
mkdir -p .go/src/k8s.io
ln -sfn "$tree" .go/src/k8s.io/kubernetes
export GOPATH=$tree/.go CGO_ENABLED=0 GOFLAGS=-mod=vendor GO111MODULE=off
export GOCACHE=$work/gocache
# The Makefile wants a git-less tree to tell it the version.
export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean
( cd .go/src/k8s.io/kubernetes && make WHAT=cmd/kube-apiserver ) >>"$log" 2>&1 || {
  echo "build-kube-apiserver: build failed; last lines of $log:" >&2; tail -n 30 "$log" >&2; exit 1; }
out=$(find "$tree/_output" -type f -name kube-apiserver -perm -u+x | head -n1)
[ -n "$out" ] || { echo "build-kube-apiserver: no binary produced; see $log" >&2; exit 1; }
cp "$out" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$recipe" > "$bin.recipe"
echo "$bin"
