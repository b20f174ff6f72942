#!/usr/bin/env bash
# Installs what building and testing tianqing-upgrade-controller needs on
# Debian 12, as root: the C toolchain and libraries, etcd, the Go toolchain
# used to build kube-apiserver, and kubectl when none is installed.
# Idempotent: installs only what is missing, and is quiet when nothing is.
set -euo pipefail

pkgs=(gcc make pkg-config libcurl4-openssl-dev libcjson-dev libyaml-dev
      libssl-dev libwebsockets-dev libcmocka-dev etcd-server etcd-client
      golang-go rsync jq valgrind openssl procps curl dpkg-dev
      golang-github-modern-go-reflect2-dev
      lua5.1 python3-yaml    # tests/e2e/test_argocd_health.sh: health.lua as Argo CD runs it
      prometheus)            # promtool (tests/e2e/test_prometheus_rules.sh, test_metrics_promtool.sh)
# SSH to the access point's machines (controller/host/ssh.c) and its tests
pkgs+=(libssh-dev openssh-server openssh-client)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
