#!/usr/bin/env python
"""Record, on a real install, how Flask/Werkzeug route WebSocket upgrade
requests when served by gevent-websocket's WebSocketHandler.

Standalone: needs only the stdlib plus flask, werkzeug, gevent and
gevent-websocket in the interpreter running it.  Talks to 127.0.0.1 only.

    python tests/matrix/routefacts.py --json          # JSON on stdout
    python tests/matrix/routefacts.py                 # short text table
    python tests/matrix/routefacts.py --json --out F  # JSON into file F

The parent process (plain stdlib sockets, no gevent) starts
``<python> routefacts.py --serve`` as a child; the child builds the Flask
app, serves it with gevent.pywsgi.WSGIServer(handler_class=WebSocketHandler)
on an ephemeral port, prints ``PORT <n>`` and serves until stdin closes.
Each probe carries an ``X-Facts-Id`` header; the child logs, per id, which
hooks/views ran, the status the Flask app produced and the routing
exception, and hands the log back on ``GET /__facts_log/<id>`` (answered by
the outermost middleware, never by Flask routing).
"""
from __future__ import print_function

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time

PATHS = ["/plain", "/wsrule", "/slash", "/slash/", "/nope", "/bp/plain"]
CONNECTION_VALUES = [
    "Upgrade",
    "upgrade",
    "keep-alive, Upgrade",
    "Upgrade, keep-alive",
    "keep-alive,Upgrade",
    "Keep-Alive, Upgrade",
    # Synthetic control, not sent by any real client: gevent-websocket only
    # checks for the substring 'upgrade' so it still answers 101, but no
    # Werkzeug release treats ';' as a list separator, so routing sees an
    # ordinary HTTP request.  Shows the "upgraded but not detected" path.
    "keep-alive; Upgrade",
]
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SOCK_TIMEOUT = 3.0  # every socket op
FRAME_WAIT = 1.0  # wait for echo / close after sending 'hi'


# --------------------------------------------------------------------------
# server side (child process)
# --------------------------------------------------------------------------

def build_app(log):
    """Build the Flask app; ``log`` is dict id -> record."""
    from flask import Blueprint, Flask, request

    app = Flask("routefacts")
    setup = {"errors": {}}

    def rec():
        rid = request.environ.get("HTTP_X_FACTS_ID", "-")
        return log.setdefault(rid, {"events": []})

    def ev(name, **kw):
        r = rec()
        item = {"event": name}
        item.update(kw)
        r["events"].append(item)

    def body():
        ws = request.environ.get("wsgi.websocket")
        ev("view", endpoint=request.endpoint, has_ws=bool(ws))
        if ws:
            msg = ws.receive()
            ev("view_ws_received", message=repr(msg))
            if msg is not None:
                if isinstance(msg, bytes):
                    msg = msg.decode("utf-8", "replace")
                ws.send("echo:" + msg)
                ev("view_ws_sent")
            return ""
        return "plain-http"

    @app.before_request
    def app_before():
        exc = request.routing_exception
        info = {
            "routing_exception": type(exc).__name__ if exc is not None else None,
            "routing_exception_code": getattr(exc, "code", None),
            "new_url": getattr(exc, "new_url", None),
            "url_rule": request.url_rule.rule if request.url_rule else None,
            "blueprint": request.blueprint,
        }
        try:
            adapter = app.url_map.bind_to_environ(request.environ)
            info["adapter_url_scheme"] = adapter.url_scheme
            info["adapter_websocket"] = getattr(adapter, "websocket", None)
        except Exception as e:  # pragma: no cover - diagnostic only
            info["adapter_error"] = repr(e)
        ev("app_before_request", **info)

    def plain():
        return body()

    app.add_url_rule("/plain", "plain", plain)

    def wsrule():
        return body()

    try:
        app.add_url_rule("/wsrule", "wsrule", wsrule, websocket=True)
    except Exception as e:
        setup["errors"]["/wsrule"] = "%s: %s" % (type(e).__name__, e)

    def slash():
        return body()

    try:
        app.add_url_rule("/slash/", "slash", slash, websocket=True)
    except Exception as e:
        setup["errors"]["/slash/"] = "%s: %s" % (type(e).__name__, e)

    bp = Blueprint("bp", "routefacts_bp", url_prefix="/bp")

    @bp.before_request
    def bp_before():
        ev("bp_before_request")

    def bp_plain():
        return body()

    bp.add_url_rule("/plain", "plain", bp_plain)
    app.register_blueprint(bp)

    orig_hhe = app.handle_http_exception

    def handle_http_exception(e):
        ev("handle_http_exception", exc=type(e).__name__, code=getattr(e, "code", None))
        return orig_hhe(e)

    app.handle_http_exception = handle_http_exception

    flask_wsgi = app.wsgi_app

    def middleware(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__facts_log/"):
            rid = path[len("/__facts_log/"):]
            data = json.dumps(log.get(rid)).encode("utf-8")
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(data)))])
            return [data]
        rid = environ.get("HTTP_X_FACTS_ID", "-")
        r = log.setdefault(rid, {"events": []})
        r["wsgi_websocket_in_environ"] = bool(environ.get("wsgi.websocket"))
        r["wsgi_url_scheme"] = environ.get("wsgi.url_scheme")
        r["done"] = False

        def sr(status, headers, exc_info=None):
            r["app_status"] = status
            r["app_headers"] = [[k, v] for k, v in headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            chunks = []
            for c in flask_wsgi(environ, sr):
                chunks.append(c)
            b = b"".join(x if isinstance(x, bytes) else x.encode("latin-1") for x in chunks)
            r["app_body_head"] = b[:200].decode("latin-1")
            return chunks
        except Exception as e:
            r["app_raised"] = "%s: %s" % (type(e).__name__, e)
            raise
        finally:
            r["done"] = True

    app.wsgi_app = middleware
    return app, setup


def serve():

    from gevent.pywsgi import WSGIServer
    from geventwebsocket.handler import WebSocketHandler

    log = {}
    app, setup = build_app(log)
    server = WSGIServer(("127.0.0.1", 0), app, handler_class=WebSocketHandler)
    server.start()
    sys.stdout.write("PORT %d\n" % server.server_port)
    sys.stdout.write("SETUP %s\n" % json.dumps(setup))
    sys.stdout.flush()

    # Stop when the parent closes our stdin (or after a hard cap).
    from gevent.os import make_nonblocking, nb_read
    fd = sys.stdin.fileno()
    make_nonblocking(fd)
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            if not nb_read(fd, 1):
                break
        except Exception:
            break
    server.stop(timeout=1)


# --------------------------------------------------------------------------
# client side (parent process, stdlib only)
# --------------------------------------------------------------------------

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=SOCK_TIMEOUT)
    s.settimeout(SOCK_TIMEOUT)
    return s


def read_head(s):
    buf = b""
    deadline = time.time() + SOCK_TIMEOUT
    while b"\r\n\r\n" not in buf:
        if time.time() > deadline:
            raise socket.timeout("head deadline")
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, sep, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0] if lines else ""
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append([k.strip(), v.strip()])
    parts = status_line.split(" ", 2)
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return code, status_line, headers, rest


def hget(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def read_body(s, headers, rest):
    cl = hget(headers, "Content-Length")
    te = (hget(headers, "Transfer-Encoding") or "").lower()
    buf = rest
    deadline = time.time() + SOCK_TIMEOUT
    try:
        while time.time() < deadline:
            if cl is not None and len(buf) >= int(cl):
                break
            if te == "chunked" and b"0\r\n\r\n" in buf:
                break
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        pass
    if te == "chunked":
        out, data = b"", buf
        while data:
            size_line, _, data = data.partition(b"\r\n")
            try:
                n = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if n == 0:
                break
            out += data[:n]
            data = data[n + 2:]
        buf = out
    return buf


def masked_text_frame(text):
    payload = text.encode("utf-8")
    mask = os.urandom(4)
    assert len(payload) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def parse_frames(buf):
    """Yield (opcode, payload, consumed) for complete unmasked frames."""
    out = []
    i = 0
    while True:
        if len(buf) - i < 2:
            break
        b0, b1 = buf[i], buf[i + 1]
        n = b1 & 0x7F
        j = i + 2
        if n == 126:
            if len(buf) - j < 2:
                break
            n = struct.unpack("!H", buf[j:j + 2])[0]
            j += 2
        elif n == 127:
            if len(buf) - j < 8:
                break
            n = struct.unpack("!Q", buf[j:j + 8])[0]
            j += 8
        if b1 & 0x80:
            j += 4  # server frames should not be masked; skip key if so
        if len(buf) - j < n:
            break
        out.append((b0 & 0x0F, buf[j:j + n], buf[i:j + n]))
        i = j + n
    return out, i


def probe_ws(port, path, conn_value, rid):
    obs = {"kind": "ws", "path": path, "connection": conn_value, "id": rid}
    s = connect(port)
    try:
        req = (
            "GET %s HTTP/1.1\r\n"
            "Host: 127.0.0.1:%d\r\n"
            "Upgrade: websocket\r\n"
            "Connection: %s\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "X-Facts-Id: %s\r\n"
            "\r\n" % (path, port, conn_value, WS_KEY, rid)
        ).encode("latin-1")
        t0 = time.time()
        s.sendall(req)
        code, status_line, headers, rest = read_head(s)
        obs["status"] = code
        obs["status_line"] = status_line
        obs["headers"] = headers
        if code != 101:
            obs["body_head"] = read_body(s, headers, rest)[:200].decode("latin-1")
            return obs
        expect = base64.b64encode(hashlib.sha1((WS_KEY + WS_GUID).encode()).digest()).decode()
        obs["accept_ok"] = hget(headers, "Sec-WebSocket-Accept") == expect
        obs["bytes_before_send"] = rest.hex()
        try:
            s.sendall(masked_text_frame("hi"))
            obs["send_ok"] = True
        except (socket.error, OSError) as e:
            obs["send_ok"] = False
            obs["send_error"] = type(e).__name__
        t_sent = time.time()
        buf = rest
        events = []
        seen = 0
        end = t_sent + FRAME_WAIT
        while True:
            frames, used = parse_frames(buf)
            for op, payload, raw in frames[seen:]:
                ms = round((time.time() - t_sent) * 1000, 1)
                if op == 0x1:
                    events.append({"frame": "text", "payload": payload.decode("utf-8", "replace"), "ms": ms})
                elif op == 0x8:
                    events.append({"frame": "close", "raw_hex": raw.hex(), "payload_hex": payload.hex(), "ms": ms})
                else:
                    events.append({"frame": "op%d" % op, "raw_hex": raw.hex(), "ms": ms})
            seen = len(frames)
            if any(e.get("frame") == "close" for e in events):
                # keep reading briefly to see whether the TCP side closes too
                pass
            remaining = end - time.time()
            if remaining <= 0:
                events.append({"frame": "timeout", "ms": round((time.time() - t_sent) * 1000, 1)})
                break
            s.settimeout(remaining)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                events.append({"frame": "timeout", "ms": round((time.time() - t_sent) * 1000, 1)})
                break
            except (socket.error, OSError) as e:
                events.append({"frame": "error", "error": type(e).__name__, "ms": round((time.time() - t_sent) * 1000, 1)})
                break
            if not chunk:
                events.append({"frame": "eof", "ms": round((time.time() - t_sent) * 1000, 1)})
                break
            buf += chunk
        obs["frames"] = events
        obs["raw_after_head_hex"] = buf[:64].hex()
        texts = [e for e in events if e["frame"] == "text"]
        obs["echo"] = texts[0]["payload"] if texts else None
        first = events[0] if events else None
        obs["first_event"] = first["frame"] if first else None
        obs["first_event_ms"] = first["ms"] if first else None
        obs["total_ms"] = round((time.time() - t0) * 1000, 1)
        return obs
    except (socket.error, OSError) as e:
        obs["client_error"] = "%s: %s" % (type(e).__name__, e)
        return obs
    finally:
        s.close()


def probe_plain(port, path, rid):
    obs = {"kind": "plain", "path": path, "id": rid}
    s = connect(port)
    try:
        s.sendall((
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Facts-Id: %s\r\n\r\n" % (path, port, rid)
        ).encode("latin-1"))
        code, status_line, headers, rest = read_head(s)
        obs["status"] = code
        obs["status_line"] = status_line
        obs["headers"] = headers
        obs["body_head"] = read_body(s, headers, rest)[:200].decode("latin-1")
    except (socket.error, OSError) as e:
        obs["client_error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()
    return obs


def fetch_log(port, rid):
    deadline = time.time() + 2.0
    rec = None
    while time.time() < deadline:
        s = connect(port)
        try:
            s.sendall(("GET /__facts_log/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % rid).encode())
            code, _, headers, rest = read_head(s)
            rec = json.loads(read_body(s, headers, rest).decode("utf-8"))
        finally:
            s.close()
        if rec is not None and rec.get("done"):
            break
        time.sleep(0.05)
    return rec


def summarize_server(rec):
    if rec is None:
        return {"app_called": False}
    evs = rec.get("events", [])
    names = [e["event"] for e in evs]
    abr = next((e for e in evs if e["event"] == "app_before_request"), {})
    hhe = next((e for e in evs if e["event"] == "handle_http_exception"), {})
    return {
        "app_called": True,
        "done": rec.get("done"),
        "wsgi_websocket_in_environ": rec.get("wsgi_websocket_in_environ"),
        "app_status": rec.get("app_status"),
        "app_location": next((v for k, v in rec.get("app_headers", []) if k.lower() == "location"), None),
        "app_body_head": rec.get("app_body_head"),
        "app_raised": rec.get("app_raised"),
        "routing_exception": abr.get("routing_exception"),
        "routing_exception_code": abr.get("routing_exception_code"),
        "handled_http_exception": hhe.get("exc"),
        "werkzeug_detected_websocket": abr.get("adapter_websocket"),
        "werkzeug_url_scheme": abr.get("adapter_url_scheme"),
        "hooks": [n for n in names if n in ("app_before_request", "bp_before_request", "view")],
        "events": evs,
    }


def versions():
    out = {"python": sys.version.split()[0]}
    try:
        from importlib.metadata import version
    except ImportError:  # pragma: no cover
        version = None
    for dist in ("flask", "werkzeug", "gevent", "gevent-websocket", "greenlet", "jinja2", "markupsafe", "itsdangerous"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = None
    return out


def run(args):
    here = os.path.abspath(__file__)
    child = subprocess.Popen(
        [sys.executable, here, "--serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        import select
        ready, _, _ = select.select([child.stdout], [], [], 60)
        line = child.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            err = child.stderr.read().decode()
            raise SystemExit("server failed to start: %r %s" % (line, err[-2000:]))
        port = int(line.split()[1])
        setup = json.loads(child.stdout.readline().decode().split(" ", 1)[1])
        observations = []
        n = 0
        for path in PATHS:
            for cv in CONNECTION_VALUES:
                n += 1
                rid = "r%d" % n
                o = probe_ws(port, path, cv, rid)
                o["server"] = summarize_server(fetch_log(port, rid))
                observations.append(o)
            n += 1
            rid = "r%d" % n
            o = probe_plain(port, path, rid)
            o["server"] = summarize_server(fetch_log(port, rid))
            observations.append(o)
    finally:
        try:
            child.stdin.close()
        except Exception:
            pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)
    server_log = child.stderr.read().decode("utf-8", "replace")
    return {
        "versions": versions(),
        "route_setup_errors": setup.get("errors"),
        "observations": observations,
        "server_stderr_tail": server_log[-4000:],
    }


def text_table(result):
    v = result["versions"]
    lines = ["flask %s werkzeug %s gevent %s gevent-websocket %s python %s" % (
        v["flask"], v["werkzeug"], v["gevent"], v["gevent-websocket"], v["python"])]
    if result["route_setup_errors"]:
        lines.append("route setup errors: %s" % result["route_setup_errors"])
    for o in result["observations"]:
        sv = o["server"]
        lines.append("%-6s %-10s %-22s -> %s echo=%s first=%s@%s app=%s rexc=%s hooks=%s" % (
            o["kind"], o["path"], repr(o.get("connection", "")), o.get("status"),
            o.get("echo"), o.get("first_event"), o.get("first_event_ms"),
            sv.get("app_status"), sv.get("routing_exception"), ",".join(sv.get("hooks", []))))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--out", help="write JSON to this file")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    result = run(args)
    data = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(data + "\n")
    if args.json:
        print(data)
    else:
        print(text_table(result))


if __name__ == "__main__":
    main()
