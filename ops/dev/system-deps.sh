#!/usr/bin/env bash
# Install the Debian packages C3S needs (zbar for pyzbar, cairo to rasterise posters in the tests,
# Chromium and WebKitGTK's WebKitWebDriver under Xvfb for browser tests,
# PostgreSQL client tools for backups, shellcheck, systemd-analyze and node to check the ops
# files). Needs root; otherwise it only reports what is missing.
set -euo pipefail

packages=(libzbar0 libcairo2 chromium webkit2gtk-driver xvfb postgresql-client shellcheck systemd nodejs)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]} (run 'sudo apt-get install ${missing[*]}')" >&2
    exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
