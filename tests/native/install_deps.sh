#!/usr/bin/env bash
# System packages for the native client (edge/native) and its tests, and the browser of the report's
# screenshot test, on Debian/Ubuntu as root.
# Idempotent: apt runs only when a package is missing, so a machine that has them pays nothing.
set -euo pipefail

# Build tools, the client's dependencies (found by CMake through pkg-config), the JSON reader of the
# golden-file test, and clang for the sanitizer + libFuzzer build.
packages=(cmake make g++ pkg-config libzmq3-dev zlib1g-dev libpng-dev nlohmann-json3-dev clang)

apt_updated=""
apt_install() {
    [[ -n "$apt_updated" ]] || { apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

is_installed() { dpkg -s "$1" >/dev/null 2>&1; }

missing=()
for pkg in "${packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
fi

# Debian 12+ ships libFuzzer and the sanitizer runtimes in a package versioned like clang; older
# releases (Ubuntu 22.04) have them in libclang-common-N-dev, which clang already pulled in.
runtime="libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
if ! is_installed "$runtime"; then
    [[ -n "$apt_updated" ]] || { apt-get update -qq; apt_updated=1; }
    if apt-cache show "$runtime" >/dev/null 2>&1; then
        apt_install "$runtime"
    fi
fi

# Headless Chromium renders crackseg report's page in tests/edge/test_report.py (skipped without it).
# Debian's package is a real browser; Ubuntu's "chromium-browser" is only a snap shim, so it is not used.
if ! is_installed chromium; then
    [[ -n "$apt_updated" ]] || { apt-get update -qq; apt_updated=1; }
    if apt-cache show chromium >/dev/null 2>&1; then
        apt_install chromium
    fi
fi
