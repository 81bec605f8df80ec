#!/usr/bin/env bash
# Installs the system packages the tests drive for real (Chromium and an emoji font for the browser tests,
# Prosody for the s2s and ejabberd interop tests, PostgreSQL and redis-server for the scaled-mode tests), when
# missing.
set -euo pipefail

declare -A package_for=(
  [/usr/bin/chromium]=chromium
  [/usr/bin/prosody]=prosody
  [/usr/sbin/ejabberdctl]=ejabberd
  # Only a Recommends of prosody, but without it Prosody ignores `unbound = {...}` and so our test DNS server.
  [/usr/lib/x86_64-linux-gnu/lua/5.4/lunbound.so]=lua-unbound
  [/usr/bin/openssl]=openssl
  [/usr/bin/redis-server]=redis-server
  # Emoji in reactions and the picker: without a colour emoji font Chromium draws them as empty boxes.
  [/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf]=fonts-noto-color-emoji
)
missing=()
# -e, not -x: lunbound.so is a library, not a program.
for binary in "${!package_for[@]}"; do
  [ -e "$binary" ] || missing+=("${package_for[$binary]}")
done
# PostgreSQL's server programs live under a versioned folder (/usr/lib/postgresql/15/bin on Debian 12).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "make test needs these system packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}  (or run make test as root)" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q -o DPkg::Lock::Timeout=600
apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}"
# The ejabberd package starts its own server (ports 5222/5269/5280) where services may start; the tests run
# throwaway instances of their own, so stop and disable the package's one by its own means.
if [[ " ${missing[*]} " == *" ejabberd "* ]]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now ejabberd || true
  else
    invoke-rc.d ejabberd stop || true
    update-rc.d ejabberd disable || true
  fi
fi
