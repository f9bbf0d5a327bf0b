#!/bin/sh
# Installs the Debian packages rlhf.c needs (build, run and test), only the missing ones.
# (clang: libFuzzer for tests/cli/fuzz.sh, which skips without it.)
# As root it runs apt-get; otherwise it prints the command to run.
set -e
PKGS="build-essential pkg-config libopenblas-dev libsqlite3-dev sqlite3 libmicrohttpd-dev libjansson-dev libsodium-dev zlib1g-dev libopenmpi-dev openmpi-bin python3 python3-numpy python3-torch clang libclang-rt-14-dev curl chromium"
missing=""
# Node.js: any node >= 18 on PATH will do (the machine may have NodeSource's build).
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/tmp/rlhf-deps.log 2>&1 || { tail -30 /tmp/rlhf-deps.log; exit 1; }
  else
    echo "deps: missing Debian packages:$missing"
    echo "deps: run as root:  apt-get install -y$missing"
    exit 1
  fi
fi
# npm packages used by the tests only (reference implementations), kept out of the repo.
if [ ! -d tests/js/node_modules/gpt-3-encoder ] || [ ! -d tests/js/node_modules/js-tiktoken ]; then
  echo "deps: installing npm test packages (gpt-3-encoder, js-tiktoken)"
  (cd tests/js && npm install --no-audit --no-fund --silent >/dev/null 2>&1) || { echo "deps: npm install failed in tests/js"; exit 1; }
fi
# Browser tier: playwright-core only (it drives Debian's chromium; no browser download).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "deps: installing npm browser-test package (playwright-core)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent >/dev/null 2>&1) || { echo "deps: npm install failed in tests/browser"; exit 1; }
fi
echo "deps: ok"
