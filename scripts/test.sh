#!/usr/bin/env bash
# The whole test suite, with its set-up: installs Debian's chromium and chromium-driver
# for the real-browser test when they are missing and this user can (root with
# apt-get); otherwise that test says plainly that it was not run. Then runs every test
# of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium and chromium-driver for the browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "chromium/chromedriver missing and not installable here: the browser test will not run"
    fi
fi

cargo test --workspace "$@"
