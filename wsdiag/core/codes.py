"""The registry of every finding code wsdiag can report.

Rules this module keeps:

* Pure core: standard library only, no I/O.
* A code is ``WS`` + three digits, grouped by the layer that produces it:
  1xx transport, 2xx the HTTP answer, 3xx handshake headers, 4xx after the upgrade,
  5xx app source, 6xx app behaviour (inferred or traced), 7xx environment, versions and
  intermediaries.  A code is never reused; a retired code stays here marked ``retired``.
* Names describe the defect (``accept-mismatch``), not the check.
* ``summary`` is a ``str.format`` template over the finding's evidence.  Rendering falls
  back to the bare template if a key is missing, so a template can never crash a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    """How bad a finding is; ``error`` makes ``probe`` exit non-zero by default."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True)
class Code:
    """One finding code: identity, severity, wording and the fix."""

    code: str
    name: str
    severity: Severity
    summary: str
    fix: str
    what: str
    why: str
    fix_long: str = ""
    retired: bool = False

    @property
    def layer(self) -> str:
        return LAYERS[self.code[2]]


LAYERS = {
    "1": "transport",
    "2": "HTTP answer",
    "3": "handshake headers",
    "4": "after the upgrade",
    "5": "app source",
    "6": "app behaviour",
    "7": "environment and intermediaries",
}

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO

FIX_WEBSOCKET_TRUE = """\
# Werkzeug >= 2.0.2: declare the rule as a WebSocket rule
@app.route("/ws", websocket=True)
def ws():
    sock = request.environ["wsgi.websocket"]
    while True:
        message = sock.receive()
        if message is None:  # the peer closed
            break
        sock.send(message)
    return ""
"""

FIX_BOTH_RULES = """\
# Works on every Werkzeug release (1.0, 2.0.0/2.0.1 and 2.0.2+): however
# the release classifies the request, one rule matches and the view runs.
app.add_url_rule("/ws", "ws", ws, websocket=True)
app.add_url_rule("/ws", "ws_http", ws)
"""

FIX_HANDLER = """\
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

WSGIServer(("127.0.0.1", 5000), app, handler_class=WebSocketHandler).serve_forever()
# or: gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 app:app
"""

FIX_NGINX = """\
location /ws {
    proxy_pass http://backend;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    proxy_set_header Host $host;
}
"""

_ALL = [
    # -- 1xx transport -------------------------------------------------------------------
    Code("WS101", "name-not-resolved", E, "{host} does not resolve ({detail})",
         "Check the host name in the URL, or the DNS the client machine uses.",
         "The host name in the URL could not be turned into an address.",
         "No connection can be made to a name the resolver does not know.",
         "Use the right host name, or an IP address, and check /etc/hosts and the resolver."),
    Code("WS102", "connection-refused", E, "nothing accepts connections on {host}:{port}",
         "Start the server, or probe the port it really listens on.",
         "The TCP connection was actively refused: no process listens on that address and port.",
         "A server that is down, bound to another interface (127.0.0.1 vs a public address) or "
         "to another port refuses the connection before any HTTP is spoken.",
         "Start the server, check the port, and check which address it binds."),
    Code("WS103", "connect-timeout", E, "no TCP answer from {host}:{port} within {timeout_s}s",
         "Check firewalls and security groups between the client and the server.",
         "The TCP connection was neither accepted nor refused in time.",
         "A firewall that drops packets, a wrong address or a host that is down looks like this.",
         "Check the address and every firewall on the path."),
    Code("WS104", "network-unreachable", E, "network path to {host} fails: {detail}",
         "Check routing and the address family (IPv4 vs IPv6).",
         "The operating system has no route to the server's address.",
         "Typical when an IPv6 address is probed on a machine without IPv6 connectivity.",
         "Probe an address the machine can reach."),
    Code("WS105", "tls-certificate-rejected", E, "the certificate of {host} was rejected: {detail}",
         "Install a certificate valid for the host name, or pass --cacert (--insecure to look past it).",
         "The TLS handshake failed because the server's certificate is not trusted for this name.",
         "Browsers refuse such a wss:// connection before any HTTP is sent, with no status code.",
         "Serve a certificate signed by a trusted CA for the exact host name, or give wsdiag the "
         "private CA with --cacert."),
    Code("WS106", "tls-handshake-failed", E, "TLS handshake with {host}:{port} failed: {detail}",
         "Check that the port speaks TLS (wss://) and which TLS versions it offers.",
         "The TLS handshake did not complete.",
         "The commonest cause is a plain-HTTP server behind a wss:// URL: it answers the TLS "
         "ClientHello with HTTP text or closes the connection.",
         "Use ws:// for a plain port, or put TLS in front of the server."),
    Code("WS107", "tls-spoken-on-plain-url", E, "the server answered a ws:// request with TLS bytes",
         "Use wss:// for this port.",
         "The server sent a TLS record where an HTTP status line was expected.",
         "The port expects TLS; a ws:// URL sends plain HTTP to it.",
         "Use wss:// for the URL."),
    Code("WS108", "proxy-refused", E, "the HTTP proxy {proxy} refused CONNECT: {detail}",
         "Check the proxy address, its credentials and whether it allows CONNECT to this port.",
         "The forward proxy did not open a tunnel to the target.",
         "Proxies often allow CONNECT only to port 443, or need authentication.",
         "Fix the proxy settings (--proxy, HTTPS_PROXY/HTTP_PROXY/NO_PROXY)."),
    Code("WS109", "no-response", E, "connected, but no response head within {timeout_s}s ({received} bytes)",
         "Check that the port is an HTTP server and that its workers are not blocked.",
         "The server accepted the connection but did not answer the handshake in time.",
         "A blocked gevent hub (a view that never yields, a missing monkey.patch_all()), an "
         "overloaded worker or a non-HTTP service on the port.",
         "Make sure no view blocks the worker; patch gevent before other imports."),
    Code("WS110", "closed-before-response", E, "the server closed the connection before answering ({received} bytes)",
         "Look at the server's error log: it dropped the request without an HTTP answer.",
         "The connection ended before a complete response head arrived.",
         "A crashing handler, a server that rejects the request at the TCP level, or plain HTTP "
         "sent to a TLS port.",
         "Read the server log for the request; check ws:// vs wss://."),
    Code("WS111", "reset-before-response", E, "the connection was reset before an answer ({received} bytes)",
         "Look at the server and proxy logs: something aborted the connection.",
         "The peer sent a TCP reset instead of an HTTP answer.",
         "Crashing workers, load balancers and firewalls reset connections.",
         "Read the server and proxy logs for this request."),
    Code("WS112", "response-head-too-large", E, "the response head exceeds {limit} bytes",
         "Find what adds so many headers (a proxy loop, cookies).",
         "The server kept sending header bytes past wsdiag's limit.",
         "Real servers send a few hundred bytes; endless headers mean a broken server or proxy.",
         "Fix the component that produces the headers."),
    # -- 2xx HTTP answer ------------------------------------------------------------------
    Code("WS201", "upgrade-refused", E, "answered {status} {reason} instead of 101 Switching Protocols",
         "Make the server accept the upgrade for this path (see the other findings for why).",
         "The server answered the WebSocket handshake with an HTTP error status.",
         "Browsers report this as 'Unexpected response code' and close with 1006.",
         "See the causes section of the report for the reason behind the status."),
    Code("WS202", "upgrade-ignored", E, "answered {status} {reason} as to a plain HTTP request: the upgrade was ignored",
         "Serve the app with gevent-websocket's WebSocketHandler.",
         "The server answered the handshake as an ordinary HTTP request.",
         "Servers without WebSocket support (Flask's development server, gevent's WSGIServer "
         "without handler_class=WebSocketHandler, gunicorn's sync/gthread/gevent workers) pass "
         "the request to the app, which sees no wsgi.websocket and answers with plain HTTP.",
         FIX_HANDLER),
    Code("WS203", "upgrade-redirected", E, "answered {status} redirect to {location}",
         "Use the canonical URL in the client (browsers never follow redirects on WebSocket).",
         "The server redirected the handshake.",
         "Browsers fail the handshake on any 3xx. Werkzeug's strict_slashes answers 308 when "
         "'/ws' is requested for a rule '/ws/'.",
         "Point the client at the Location URL, or declare the rule with strict_slashes=False."),
    Code("WS204", "http10-upgrade-refused", E, "answered 402 to an HTTP/1.0 upgrade (gevent-websocket's refusal)",
         "Make every hop speak HTTP/1.1 (nginx: proxy_http_version 1.1).",
         "gevent-websocket refuses upgrades sent as HTTP/1.0 with '402 Bad Request' (sic).",
         "An intermediary that forwards HTTP/1.0 (nginx's default proxy_http_version) turns every "
         "client's upgrade into this.",
         FIX_NGINX),
    Code("WS205", "version-required", E, "answered 426 Upgrade Required (server supports versions {versions})",
         "Send (and forward) Sec-WebSocket-Version: 13.",
         "The server did not see a WebSocket version it supports.",
         "A client or an intermediary dropped or changed Sec-WebSocket-Version.",
         "Forward every Sec-WebSocket-* header unchanged."),
    Code("WS206", "upgrade-unauthorized", E, "answered {status}: the handshake needs credentials or an allowed Origin",
         "Send the cookie/token the app expects, or allow the client's Origin.",
         "The server refused the handshake for authentication or authorisation.",
         "Browsers send cookies and Origin but cannot set an Authorization header on WebSocket.",
         "Probe with the credentials the real client sends (-H 'Cookie: ...', --origin)."),
    Code("WS207", "rate-limited", W, "answered 429 Too Many Requests (Retry-After: {retry_after})",
         "Slow down reconnects; check the rate limiter's rules for WebSocket paths.",
         "A rate limiter refused the handshake.",
         "Clients that reconnect in a tight loop after a failure trip rate limiters.",
         "Back off between reconnects; exempt or raise the limit for the WebSocket path."),
    Code("WS208", "proxy-error", E, "answered {status} {reason}: an intermediary could not reach or use the backend",
         "Check that the backend runs and that the proxy forwards the upgrade to it.",
         "A gateway status (502/503/504) came back instead of the backend's answer.",
         "The backend is down, too slow, or closed the proxied connection.",
         "Check the backend and the proxy's error log."),
    Code("WS209", "malformed-status-line", E, "the answer does not start with an HTTP status line: {line!r}",
         "Check that the port is an HTTP server (and ws:// vs wss://).",
         "The first line of the answer is not 'HTTP/1.x NNN reason'.",
         "Non-HTTP services, HTTP/0.9 servers and TLS ports send such answers.",
         "Probe the right port and scheme."),
    Code("WS210", "declared-body-missing", I, "declared Content-Length {length} but sent {received} body bytes",
         "Nothing to fix in the client: the server's error response is incomplete.",
         "The server announced a body and closed without sending it.",
         "gevent-websocket 0.10.1 on Python 3 writes its error bodies as str, which fails after "
         "the head is sent: a fingerprint of that server.",
         "Read the server log; the real reason is in the status line."),
    # -- 3xx handshake headers ------------------------------------------------------------
    Code("WS301", "upgrade-header-invalid", E, "Upgrade header is {actual!r}, expected 'websocket'",
         "Answer with 'Upgrade: websocket' (RFC 6455 section 4.2.2).",
         "The 101 answer lacks 'Upgrade: websocket'.",
         "RFC 6455 section 4.1 makes the client fail the connection.",
         "Fix the server or the proxy that rewrites the header."),
    Code("WS302", "connection-header-invalid", E, "Connection header is {actual!r}, expected the token 'Upgrade'",
         "Answer with 'Connection: Upgrade'.",
         "The 101 answer lacks the 'Upgrade' token in Connection.",
         "RFC 6455 section 4.1 makes the client fail the connection.",
         "Fix the server or the proxy that rewrites the header."),
    Code("WS303", "accept-missing", E, "the 101 answer has no Sec-WebSocket-Accept",
         "Answer with Sec-WebSocket-Accept computed from the request's key.",
         "The server did not prove it understood the WebSocket handshake.",
         "RFC 6455 section 4.1 makes the client fail the connection.",
         "Fix the server's handshake code."),
    Code("WS304", "accept-mismatch", E, "Sec-WebSocket-Accept is {actual!r}, expected {expected!r}",
         "Compute the accept from this request's key (base64(SHA-1(key + GUID))).",
         "The accept value does not match the key that was sent.",
         "A caching proxy replaying an old answer, or a server that hashes the wrong value.",
         "Fix the server's handshake code; never cache 101 answers."),
    Code("WS305", "subprotocol-not-selected", E, "the client offered {offered} but the 101 selects no subprotocol",
         "Select one of the offered subprotocols in the 101, or stop offering one.",
         "The client asked for a subprotocol and the server did not choose one.",
         "Chromium fails such a handshake ('Sent non-empty Sec-WebSocket-Protocol header but no "
         "response was received'). gevent-websocket only echoes a protocol when the WSGI app "
         "object has an app_protocol(path) method, which a Flask app lacks.",
         "Wrap the app in an object with app_protocol(path) returning the protocol, or have "
         "clients not send one."),
    Code("WS306", "subprotocol-unexpected", E, "the 101 selects subprotocol {actual!r}, which the client did not offer",
         "Only select a subprotocol the client offered.",
         "RFC 6455 section 4.1: the selected subprotocol must be one the client offered.",
         "Clients fail the connection.",
         "Fix the server's subprotocol choice."),
    Code("WS307", "extension-unexpected", E, "the 101 enables extension {actual!r}, which the client did not offer",
         "Only enable extensions the client offered.",
         "RFC 6455 section 4.1: an extension the client did not ask for fails the connection.",
         "Clients fail the connection.",
         "Fix the server's extension negotiation."),
    Code("WS308", "response-http-version", E, "the 101 answer is {version}, not HTTP/1.1",
         "Answer the upgrade as HTTP/1.1.",
         "RFC 6455 section 4.1 requires an HTTP/1.1 (or higher) answer.",
         "An HTTP/1.0 component rewrote the status line.",
         "Fix the component that speaks HTTP/1.0."),
    Code("WS309", "duplicate-header", W, "{name} appears {count} times in the answer",
         "Send each handshake header once.",
         "A handshake header is repeated.",
         "Clients differ in how they combine repeats; some fail the handshake.",
         "Find the layer that adds the header a second time (often app and proxy both)."),
    Code("WS310", "bare-lf-line-endings", W, "the answer's head ends lines with bare LF, not CRLF",
         "End header lines with CRLF.",
         "HTTP requires CRLF line endings.",
         "Lenient clients accept it; strict ones fail the handshake.",
         "Fix the server's response writer."),
    Code("WS311", "malformed-header-line", W, "a header line has no colon: {line!r}",
         "Send well-formed header lines.",
         "A line in the head is not 'Name: value'.",
         "Strict clients fail the handshake.",
         "Fix the server's response writer."),
    Code("WS312", "body-after-101", E, "{length} bytes that are not a WebSocket frame followed the 101",
         "Send nothing after the 101 head but WebSocket frames.",
         "The server sent HTTP body bytes on the upgraded connection.",
         "Clients read them as frames and fail with 'Invalid frame header'.",
         "Do not send a body with 101."),
    # -- 4xx after the upgrade ------------------------------------------------------------
    Code("WS401", "closed-after-upgrade", E, "101, then the server closed the WebSocket after {close_ms} ms without answering (close code: {close_code})",
         "See the causes: the app ended the socket before serving it.",
         "The server accepted the upgrade and closed it at once, unserved.",
         "Under gevent-websocket the 101 is sent before the app runs; whatever the app then "
         "answers (a 400, 404, 500) is thrown away and the socket is closed. Browsers show "
         "'open' then 'close 1005' and nothing is logged.",
         "The causes section names which app-level failure it is."),
    Code("WS402", "eof-after-upgrade", E, "101, then the connection ended after {close_ms} ms without a close frame",
         "Find what ends the connection: the app, a worker timeout or a proxy.",
         "The TCP connection ended with no WebSocket close frame.",
         "Browsers report close code 1006. Idle timeouts of proxies and workers look like this.",
         "Read the proxy and worker logs; keep the socket alive with pings."),
    Code("WS403", "reset-after-upgrade", E, "101, then the connection was reset after {close_ms} ms",
         "Find what aborts the connection: the app, a worker or a proxy.",
         "The peer reset the TCP connection after the upgrade.",
         "Crashing workers and proxies reset connections.",
         "Read the server and proxy logs."),
    Code("WS404", "silent-after-upgrade", W, "101, then no answer to a ping or a message within {window_ms} ms",
         "Make sure the handler reads the socket (receive() also answers pings).",
         "The socket stayed open but the server answered nothing.",
         "gevent-websocket answers pings only while the app calls receive(). A push-only "
         "handler, a slow handler or a blocked worker is silent.",
         "If the handler is push-only this can be fine; otherwise check it reads the socket."),
    Code("WS405", "masked-server-frame", E, "the server sent a masked frame (opcode {opcode})",
         "Servers must not mask frames (RFC 6455 section 5.1).",
         "A frame from the server had the MASK bit set.",
         "Clients must fail the connection (RFC 6455 section 5.1).",
         "Fix the server's frame writer."),
    Code("WS406", "invalid-frame", E, "the server sent an invalid frame: {problem}",
         "Fix the server's frame writer.",
         "A frame broke RFC 6455 section 5 (reserved bits, opcode, control frame rules).",
         "Clients fail the connection with 'Invalid frame header' (1002/1006).",
         "Fix the server's frame writer."),
    Code("WS407", "invalid-close-code", E, "the server's close frame carries code {close_code}, which RFC 6455 forbids on the wire",
         "Close with a valid code (1000-1003, 1007-1011, 3000-4999).",
         "RFC 6455 section 7.4 lists which codes may be sent.",
         "gevent-websocket 0.10.1 sends the reason's first two bytes as the code (close(4001, "
         "'policy') arrives as 28783 'licy').",
         "Do not rely on close codes with gevent-websocket 0.10.1; send an error message first."),
    Code("WS408", "invalid-close-reason", E, "the server's close reason is not valid UTF-8",
         "Send a UTF-8 close reason.",
         "RFC 6455 section 5.5.1 requires UTF-8 reasons.",
         "Clients fail the connection.",
         "Fix the server's close call."),
    Code("WS409", "http-in-frame-stream", E, "the server wrote HTTP ({line!r}) on the upgraded connection",
         "Run only one WebSocket handshake: do not mix gevent-websocket's handler with flask-sock.",
         "HTTP text arrived where WebSocket frames belong.",
         "flask-sock/simple-websocket under gevent-websocket's WebSocketHandler answers a second "
         "101; a development server writes a trailing 200. Browsers fail with 'Invalid frame header'.",
         "Serve flask-sock apps without gevent-websocket's handler."),
    Code("WS410", "oversize-frame", E, "the server announced a {length}-byte frame, over wsdiag's {limit}-byte limit",
         "Check the frame lengths the server writes.",
         "A frame header announced an absurd payload length.",
         "Usually a corrupt stream rather than a real message.",
         "Fix the server's frame writer."),
    Code("WS411", "close-without-code", I, "the server's close frame carries no status code (browsers report 1005)",
         "Send a close code if clients need to know why.",
         "The close frame was empty.",
         "gevent-websocket 0.10.1 never sends a close code, so every server close reads 1005.",
         "Send an application message before closing if the client needs a reason."),
    # -- 5xx app source -------------------------------------------------------------------
    # Reported by `wsdiag check` (wsdiag/check): read from the app's source, its server
    # start-up and its gunicorn settings, and (with --app) from the installed Werkzeug's routing.
    Code("WS501", "socket-route-not-websocket", E, "the rule {route} serves a WebSocket view ({view}) but lacks websocket=True: {consequence}",
         "Declare the rule with websocket=True (Werkzeug >= 2.0.2), e.g. @app.route(\"/ws\", websocket=True).",
         "A route whose view reads environ['wsgi.websocket'] (directly or through a helper) is "
         "declared without websocket=True.",
         "Werkzeug >= 2 routes an upgrade request as ws:// and raises WebsocketMismatch (400) "
         "when the matched rule lacks websocket=True, before the view runs. gevent-websocket has "
         "already sent 101, so the client sees open, then close (1005), and nothing is logged. On "
         "Werkzeug 2.0.0/2.0.1 only clients sending exactly 'Connection: Upgrade' (Chrome) fail.",
         FIX_WEBSOCKET_TRUE + "\n# On Werkzeug 1.0 or 2.0.0/2.0.1 websocket=True is not enough:\n" + FIX_BOTH_RULES),
    Code("WS502", "socket-served-in-before-request", W, "the {level}-level before_request hook {hook} serves sockets before routing (the workaround for the hidden 400)",
         "Serve the socket from a route declared with websocket=True and remove the hook.",
         "A before_request hook reads environ['wsgi.websocket'] and serves the socket itself.",
         "This is the known workaround for the hidden WebsocketMismatch: app-level hooks run "
         "before routing fails. It upgrades and serves every path, bypasses routing, methods and "
         "blueprint hooks, and a hook that returns None lets Flask go on to the hidden 400 anyway. "
         "A blueprint-level hook does not even run when routing fails.",
         "# Move the handler out of the hook into a WebSocket route:\n"
         "@app.route(\"/ws\", websocket=True)\n"
         "def ws():\n"
         "    websocket_handler(request.environ[\"wsgi.websocket\"])\n"
         "    return \"\"\n"),
    Code("WS503", "flask-sockets-rule-not-websocket", E, "flask-sockets registers {route} without websocket=True: on Werkzeug >= 2 every upgrade raises WebsocketMismatch inside flask-sockets",
         "Replace flask-sockets (archived) with a Flask route declared websocket=True under gevent-websocket.",
         "The app uses Flask-Sockets (heroku-python/flask-sockets), whose Sockets keeps its own "
         "url_map and adds Rule(rule, endpoint=f) without websocket=True.",
         "On Werkzeug >= 2 its middleware's adapter.match() raises WebsocketMismatch for every "
         "upgrade: 101, then close, and a traceback in the server log. Passing websocket=True to "
         "@sockets.route does not help (the option is dropped); the project is archived.",
         "# Drop flask_sockets; serve the same handler from a Flask WebSocket route:\n"
         "@app.route(\"/echo\", websocket=True)\n"
         "def echo():\n"
         "    ws = request.environ[\"wsgi.websocket\"]\n"
         "    ...  # the body of the old @sockets.route view\n"
         "    return \"\"\n"),
    Code("WS504", "server-without-websocket-handler", E, "{call} serves the app without gevent-websocket's WebSocketHandler ({server}): upgrades are answered as plain HTTP",
         "Serve the app with gevent's WSGIServer(..., handler_class=WebSocketHandler) or gunicorn's GeventWebSocketWorker.",
         "The source starts a server that has no WebSocket support.",
         "Flask's development server (app.run(), flask run, run_simple) and gevent's WSGIServer "
         "without handler_class=WebSocketHandler never upgrade: the view sees no "
         "environ['wsgi.websocket'] and answers the handshake as a plain request.",
         FIX_HANDLER),
    Code("WS505", "gunicorn-worker-cannot-upgrade", E, "gunicorn runs with worker class {worker}, which cannot serve gevent-websocket sockets",
         "Use -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker (worker_class in a config file).",
         "A gunicorn command line or configuration selects a worker class without gevent-websocket's handler.",
         "gunicorn's sync (the default), gthread, gevent, eventlet and tornado workers never set "
         "environ['wsgi.websocket']: the upgrade is answered as a plain request (400/500, or a "
         "200 page). Only geventwebsocket.gunicorn.workers.GeventWebSocketWorker upgrades.",
         "gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 app:app\n"
         "# gunicorn.conf.py:\n"
         "worker_class = \"geventwebsocket.gunicorn.workers.GeventWebSocketWorker\"\n"),
    Code("WS506", "websocket-rule-non-get", E, "the WebSocket rule {route} allows {methods}: Werkzeug refuses it (ValueError) and gevent-websocket upgrades only GET",
         "Declare WebSocket rules for GET only; serve other methods from a separate plain rule.",
         "A rule declared with websocket=True also allows methods other than GET.",
         "Every Werkzeug release since 1.0 raises ValueError(\"WebSocket rules can only use 'GET', "
         "'HEAD', and 'OPTIONS' methods.\") when the rule is registered, so the app does not even "
         "import; gevent-websocket only upgrades GET requests anyway.",
         "@app.route(\"/ws\", websocket=True)          # GET: the socket\n"
         "def ws(): ...\n"
         "@app.route(\"/ws/send\", methods=[\"POST\"])  # plain HTTP beside it\n"
         "def ws_send(): ...\n"),
    Code("WS507", "websocket-rule-slash-redirect", W, "the WebSocket rule {route} ends with '/' and keeps strict_slashes: a client requesting {alt_path} gets a hidden {hidden}, never the view",
         "Connect to the canonical path, or declare the rule with strict_slashes=False.",
         "A websocket=True rule ends with a slash, so the path without it does not reach the view.",
         "Werkzeug answers '/ws' for a rule '/ws/' with a 308 redirect (404 on Werkzeug >= 2.2 when "
         "the request is not detected as WebSocket). Browsers never follow redirects on "
         "WebSocket, and gevent-websocket hides the status behind its 101 anyway.",
         "@app.route(\"/ws/\", websocket=True, strict_slashes=False)\n"),
    Code("WS508", "blueprint-hooks-skipped", I, "when routing fails for {route}, the before_request hooks of blueprint {blueprint} ({hooks}) do not run; only app-level hooks do",
         "Put logging or auth that must see failed upgrades in app-level hooks or WSGI middleware.",
         "The WebSocket route belongs to a blueprint with its own before_request hooks.",
         "Flask runs blueprint hooks only once routing has found the blueprint; a hidden 400/404/308 "
         "happens before that, so the blueprint's logging and auth never see the failed upgrade. "
         "This misleads anyone reading logs for the failure.",
         "@app.before_request  # app-level: runs even when routing fails\n"
         "def log_upgrades():\n"
         "    if request.environ.get(\"wsgi.websocket\") is not None:\n"
         "        app.logger.info(\"upgrade %s\", request.path)\n"),
    Code("WS509", "socket-route-breaks-on-werkzeug-2", W, "the rule {route} (view {view}) works on the installed Werkzeug {werkzeug} but every upgrade gets a hidden 400 on Werkzeug >= 2.0.2, where it needs websocket=True",
         "Keep it as is on Werkzeug 1.0 (websocket=True never matches there); register both rules to survive the upgrade.",
         "A WebSocket view's rule lacks websocket=True, which is right on Werkzeug 1.0.x only.",
         "Werkzeug 1.0 never detects WebSocket requests under gevent, so a plain rule serves every "
         "client and a websocket=True rule would never match. From Werkzeug 2.0.2 on the plain rule "
         "gets WebsocketMismatch for every client; on 2.0.0/2.0.1 for 'Connection: Upgrade' only.",
         FIX_BOTH_RULES),
    Code("WS510", "route-url-not-built", I, "could not build a URL for {route} to route it in-process: {detail}",
         "Check this route by probing it (wsdiag probe) or give its converters simple values.",
         "wsdiag check --app routes a sample URL for each candidate rule; this rule's URL could not be built.",
         "Custom converters or rules whose sample URL does not match the rule itself cannot be "
         "routed without guessing; the rule is reported rather than silently skipped.",
         "wsdiag probe ws://HOST/PATH   # the path a real client uses\n"),
    # -- 6xx app behaviour ----------------------------------------------------------------
    Code("WS601", "route-not-websocket", E, "the route for {path} lacks websocket=True: Werkzeug raises WebsocketMismatch (400), hidden behind the 101",
         "Declare the route with @app.route(..., websocket=True).",
         "Werkzeug >= 2 routes an upgrade request as ws:// and raises WebsocketMismatch (400 Bad "
         "Request) when the matched rule lacks websocket=True. Flask has already run the "
         "app-level before_request hooks; the view never runs.",
         "gevent-websocket sent 101 before calling the app and discards the 400, then closes the "
         "socket: the client sees open, then close, and nothing is logged. Which clients fail "
         "depends on the Werkzeug release and on the Connection header each client sends: on "
         "Werkzeug 1.0 this route works, on 2.0.0/2.0.1 it fails only for clients sending exactly "
         "'Connection: Upgrade' (Chrome), and from 2.0.2 on it fails for every client.",
         FIX_WEBSOCKET_TRUE + "\n# On Werkzeug 1.0 or 2.0.0/2.0.1 websocket=True is not enough:\n" + FIX_BOTH_RULES),
    Code("WS602", "route-not-found-hidden", E, "no route matches {path}: the 404 is hidden behind the 101",
         "Fix the URL (path, blueprint url_prefix, proxy prefix).",
         "The request matched no rule; Flask answered 404 after gevent-websocket had sent 101.",
         "The 404 is discarded like every status under gevent-websocket.",
         "Use the path the app really serves; check blueprint url_prefix and proxy path rewriting."),
    Code("WS603", "socket-ended-by-app", E, "the route for {path} is a WebSocket route, but the app ends the socket at once",
         "Keep the view in a receive() loop until receive() returns None.",
         "Routing succeeds (the rule has websocket=True), yet the socket closes within milliseconds.",
         "The view returned at once, raised, or a before_request hook / abort() rejected the "
         "request; gevent-websocket then closes the socket and hides the status.",
         FIX_WEBSOCKET_TRUE),
    Code("WS604", "socket-served-before-routing", W, "the socket is served before routing (e.g. in before_request): even {control_path} is upgraded and served",
         "Move the handler into a route declared with websocket=True.",
         "A before_request hook (or middleware) serves every upgrade request, whatever the path.",
         "This is the known workaround for the hidden WebsocketMismatch. It works, but it serves "
         "sockets on every path and bypasses routing, blueprint hooks and methods; a hook that "
         "returns None lets Flask go on to routing, which ends in the hidden 400 anyway.",
         FIX_WEBSOCKET_TRUE),
    Code("WS605", "redirect-hidden", E, "{path} redirects ({status} to {location}); the redirect is hidden behind the 101",
         "Use the canonical path in the client, or strict_slashes=False on the rule.",
         "Routing answered a redirect (strict_slashes or merge_slashes) that gevent-websocket discarded.",
         "Browsers never follow redirects on WebSocket; under gevent-websocket they do not even see it.",
         "Request the canonical path, or declare the rule with strict_slashes=False."),
    Code("WS606", "rejection-hidden", E, "{path} answers {status} without the upgrade; the refusal is hidden behind the 101",
         "Send the credentials the app expects, or accept and then close with a message.",
         "The app refuses the request (auth, origin checks) before the view.",
         "gevent-websocket discards the 401/403 after the 101, so nothing tells the client.",
         "Authenticate with a cookie the browser sends, or accept the socket and send an error."),
    Code("WS607", "server-error-hidden", E, "{path} fails with {status}; the error is hidden behind the 101",
         "Read the server's traceback for the view.",
         "The app raises on this path; the 500 is discarded after the 101.",
         "gevent-websocket hides the status; the traceback is in the server log.",
         "Fix the exception in the view or hook."),
    Code("WS608", "abandoned-unexplained", E, "the app ends the socket at once; black-box evidence cannot say why",
         "Probe with --app or use `wsdiag check` to see inside the app.",
         "The socket closes unserved and the control requests do not narrow the cause.",
         "Hidden routing errors, hooks and views all look the same from outside.",
         "Use the in-process checks."),
    Code("WS609", "method-not-allowed-hidden", E, "the rule for {path} does not allow GET: the 405 is hidden behind the 101",
         "Allow GET on the rule: a WebSocket handshake is a GET.",
         "Routing matched the path but not the method; Flask answered 405 after gevent-websocket had sent 101.",
         "gevent-websocket discards the 405 like every status after its 101.",
         "@app.route('/ws', websocket=True)  # methods default to GET"),
    # -- 7xx environment and intermediaries -------------------------------------------------
    Code("WS701", "connection-header-split", E, "clients split by Connection header: {failing} fail, {working} work",
         "Upgrade Werkzeug to >= 2.0.2 and declare the route with websocket=True.",
         "Only clients sending some Connection values are routed as WebSocket.",
         "Werkzeug's detection of WebSocket requests changed between releases; a release that "
         "only recognises one spelling of the Connection header routes other clients as plain "
         "HTTP. This is the 'works in Firefox, not in Chrome' report.",
         "# Best: pip install 'werkzeug>=2.0.2' and keep one WebSocket rule.\n" + FIX_WEBSOCKET_TRUE.split("\n", 1)[1]
         + "\n# If the Werkzeug release cannot change, register both rules for the view:\n" + FIX_BOTH_RULES),
    Code("WS702", "server-without-websocket", E, "the server answers upgrades as plain HTTP: it has no WebSocket support{server_hint}",
         "Serve the app with gevent-websocket's WebSocketHandler (or its gunicorn worker).",
         "No profile got a 101; the server treats the handshake as ordinary HTTP.",
         "Flask's development server, gevent's WSGIServer without handler_class and gunicorn's "
         "non-WebSocket workers never upgrade.",
         FIX_HANDLER),
    Code("WS703", "proxy-strips-upgrade", E, "the upgrade headers do not reach the app: an intermediary strips Upgrade/Connection",
         "Forward the upgrade: proxy_set_header Upgrade $http_upgrade; Connection \"upgrade\".",
         "The app answers the handshake exactly as it answers a plain GET.",
         "Upgrade and Connection are hop-by-hop headers; proxies drop them unless told not to.",
         FIX_NGINX),
    Code("WS704", "proxy-http10", E, "an intermediary forwards the upgrade as HTTP/1.0",
         "Set proxy_http_version 1.1 on the proxy.",
         "An HTTP/1.1 client's handshake was refused as HTTP/1.0 upstream.",
         "nginx forwards HTTP/1.0 unless proxy_http_version 1.1 is set; gevent-websocket then "
         "answers 402.",
         FIX_NGINX),
    Code("WS706", "websocket-rule-unmatchable", E, "if Werkzeug is older than 2.0, websocket=True rules never match under gevent: {path} would fail with a hidden 400",
         "Upgrade Werkzeug/Flask to >= 2.0.2, or drop websocket=True while on Werkzeug 1.0.",
         "Werkzeug 1.0 decides 'WebSocket' from wsgi.url_scheme only, which gevent sets to http.",
         "A rule declared with websocket=True (accepted by Werkzeug 1.0 without error) can then "
         "never match: every upgrade gets WebsocketMismatch (400), hidden behind gevent-websocket's "
         "101. A plain GET to the rule also answers 400, exactly as on Werkzeug 2, so from outside "
         "this looks like a view that ends the socket.",
         "pip install 'flask>=2.0.3' 'werkzeug>=2.0.2'  # and keep websocket=True\n"
         "# or, staying on Werkzeug 1.0: @app.route('/ws') without websocket=True,\n"
         "# or, to work on every release, register both rules:\n" + FIX_BOTH_RULES),
    Code("WS705", "gevent-websocket-server", I, "the server behaves like gevent-websocket ({evidence})",
         "Nothing to fix; it explains the 101-then-close symptom.",
         "Fingerprint of gevent-websocket's WebSocketHandler.",
         "It sends 101 before the app runs, ignores close codes and hides app statuses.",
         "Remember that statuses and close codes from this server are not meaningful."),
]

REGISTRY: dict[str, Code] = {c.code: c for c in _ALL}
BY_NAME: dict[str, Code] = {c.name: c for c in _ALL}


def lookup(key: str) -> Code | None:
    """Find a code by ``WS601``, ``ws601`` or its name ``route-not-websocket``."""
    key = key.strip()
    return REGISTRY.get(key.upper()) or BY_NAME.get(key.lower())


def format_summary(code: Code, evidence: dict) -> str:
    """Fill the summary template; never raises on missing or odd evidence."""
    try:
        return code.summary.format_map(_Default(evidence))
    except (ValueError, IndexError, AttributeError, TypeError):
        return code.summary


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return "?"
