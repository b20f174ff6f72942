#!/usr/bin/env bash
# sshd-setup.sh DIR PORT - prepare a private OpenSSH server for the SSH
# tests (tests/unit/test_ssh.c, tests/bench/ssh_bench.sh), as root:
#   DIR/ssh_host_ed25519_key, DIR/ssh_host_ecdsa_key   its host keys (new each time)
#   DIR/other_ed25519_key                            a key it does not have
#   DIR/sshd_config                                  127.0.0.1:PORT, passwords only
#   DIR/upload/                                      owned by the test user
# and the user tqu-ssh-test (created once, left in place: no home, shell
# /bin/sh) with the password read from stdin. It does not start sshd: the
# caller runs `/usr/sbin/sshd -D -e -f DIR/sshd_config` itself, so it owns
# the process and stops it on every exit path.
set -euo pipefail
dir=$1 port=$2
user=tqu-ssh-test
[ "$(id -u)" -eq 0 ] || { echo "sshd-setup: needs root" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "sshd-setup: no /usr/sbin/sshd (openssh-server)" >&2; exit 1; }
mkdir -p /run/sshd && chmod 0755 /run/sshd
id "$user" >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/sh "$user"
pw=$(cat)
printf '%s:%s\n' "$user" "$pw" | chpasswd
for t in ed25519 ecdsa; do
  rm -f "$dir/ssh_host_${t}_key" "$dir/ssh_host_${t}_key.pub"
  ssh-keygen -q -t "$t" -N '' -C "tqu-test-$t" -f "$dir/ssh_host_${t}_key"
done
rm -f "$dir/other_ed25519_key" "$dir/other_ed25519_key.pub"
ssh-keygen -q -t ed25519 -N '' -C tqu-test-other -f "$dir/other_ed25519_key"
mkdir -p "$dir/upload"
chown "$user" "$dir/upload"
chmod 0755 "$dir"
sftp=/usr/lib/openssh/sftp-server
cat > "$dir/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
HostKey $dir/ssh_host_ecdsa_key
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
AllowUsers $user
StrictModes no
MaxStartups 50
MaxAuthTries 6
LogLevel ERROR
Subsystem sftp $sftp
CFG
