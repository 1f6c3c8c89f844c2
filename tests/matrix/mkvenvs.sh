#!/bin/bash
# Create one virtualenv per Flask/Werkzeug release under $VENVS (default
# /work/scratch/venvs), each with gevent + gevent-websocket==0.10.1.
# Usage: bash tests/matrix/mkvenvs.sh     (idempotent; ~30 s from scratch)
set -u
VENVS=${VENVS:-/work/scratch/venvs}
mkdir -p "$VENVS" && cd "$VENVS" || exit 1
mk() {
  name=$1; shift
  if [ -x "$name/bin/python" ] && "$name/bin/python" -c 'import flask,werkzeug,geventwebsocket' 2>/dev/null; then
    echo "$name exists"; return 0
  fi
  python3 -m venv "$name"
  if ! "$name/bin/pip" install -q gevent gevent-websocket==0.10.1 "$@" > "$name.install.log" 2>&1; then
    echo "$name FAILED (see $VENVS/$name.install.log)"; tail -5 "$name.install.log"; return 1
  fi
  "$name/bin/python" -c 'from importlib.metadata import version as v; print("'"$name"'", "flask", v("flask"), "werkzeug", v("werkzeug"), "gevent", v("gevent"))'
}
# Flask 1.1.4 needs the pre-2021 pallets deps to import on Python 3.11.
mk f114-w101 flask==1.1.4 werkzeug==1.0.1 "jinja2<3" "markupsafe<2.1" "itsdangerous<2" "click<8" &
mk f201-w200 flask==2.0.1 werkzeug==2.0.0 &
mk f201-w201 flask==2.0.1 werkzeug==2.0.1 &
wait
mk f203-w202 flask==2.0.3 werkzeug==2.0.2 &
mk f203-w203 flask==2.0.3 werkzeug==2.0.3 &
mk f213-w212 flask==2.1.3 werkzeug==2.1.2 &
wait
mk f225-w223 flask==2.2.5 werkzeug==2.2.3 &
mk f233-w238 flask==2.3.3 werkzeug==2.3.8 &
mk f303-w306 flask==3.0.3 werkzeug==3.0.6 &
mk f313-w319 flask==3.1.3 werkzeug==3.1.9 &
wait
# flask-sockets 0.2.1 (archived, pure Python) for FAILURES.md FM-16: installed on its own into
# $VENVS/flask-sockets and put on the PYTHONPATH of a server running the test env's
# Flask/Werkzeug >= 2 (tests/test_undecided.py).
if [ -f flask-sockets/flask_sockets.py ]; then
  echo "flask-sockets exists"
else
  python3 -m pip install -q --no-deps --target flask-sockets flask-sockets==0.2.1 || echo "flask-sockets FAILED"
fi
