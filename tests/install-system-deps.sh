#!/usr/bin/env bash
# Installs the system packages the tests drive for real (Chromium for the browser tests), when missing.
set -euo pipefail

declare -A package_for=(
  [/usr/bin/chromium]=chromium
)
missing=()
for binary in "${!package_for[@]}"; do
  [ -x "$binary" ] || missing+=("${package_for[$binary]}")
done
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
