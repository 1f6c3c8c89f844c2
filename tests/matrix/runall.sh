#!/bin/bash
# Run routefacts.py in every venv made by mkvenvs.sh and store the JSON in
# tests/matrix/facts/<venv>.json.  Usage: bash tests/matrix/runall.sh
set -u
VENVS=${VENVS:-/work/scratch/venvs}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/facts"
rc=0
for py in "$VENVS"/*/bin/python; do
  env=$(basename "$(dirname "$(dirname "$py")")")
  if timeout 300 "$py" "$here/routefacts.py" --json --out "$here/facts/$env.json" > /dev/null; then
    echo "$env ok"
  else
    echo "$env FAILED"; rc=1
  fi
done
exit $rc
