"""The registry of every finding code wsdiag can report.

Rules this module keeps:

* Pure core: standard library only, no I/O.
* A code is ``WS`` + three digits, grouped by the layer that produces it:
  1xx transport, 2xx the HTTP answer, 3xx handshake headers, 4xx after the upgrade,
  5xx app source, 6xx app behaviour (inferred or traced), 7xx environment, versions and
  intermediaries, 80x-84x Socket.IO and Engine.IO, 85x-89x wsdiag's own probes (browsers,
  bisection, replay).  A code is never reused; a retired code stays here marked ``retired``.
* Names describe the defect (``accept-mismatch``), not the check.
* ``summary`` is a ``str.format`` template over the finding's evidence.  Rendering falls
  back to the bare template if a key is missing, so a template can never crash a report.
"""

from __future__ import annotations

from enum import Enum

from wsdiag.core.record import FrozenRecord


class Severity(str, Enum):
    """How bad a finding is; ``error`` makes ``probe`` exit non-zero by default."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Code(FrozenRecord):
    """One finding code: identity, severity, wording and the fix."""

    __slots__ = ("code", "name", "severity", "summary", "fix", "what", "why", "fix_long", "retired")
    _defaults = {"fix_long": "", "retired": False}
    code: str
    name: str
    severity: Severity
    summary: str
    fix: str
    what: str
    why: str
    fix_long: str
    retired: bool

    @property
    def layer(self) -> str:
        if self.code[2] == "8" and int(self.code[2:]) >= 850:
            return LAYERS["85"]
        return LAYERS[self.code[2]]


LAYERS = {
    "1": "transport",
    "2": "HTTP answer",
    "3": "handshake headers",
    "4": "after the upgrade",
    "5": "app source",
    "6": "app behaviour",
    "7": "environment and intermediaries",
    "8": "Socket.IO and Engine.IO",  # WS800-WS849
    "85": "wsdiag's own probes: browsers, bisection, replay",  # WS850-WS899
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
    # -- 220-229 refusals mapped to their causes (core.diagnose, issue 10) -----------------
    Code("WS220", "handshake-headers-altered", E, "{server_said}{by}: {header}",
         "Forward every Sec-WebSocket-* header unchanged (CDN/proxy header policy) and use a conforming client.",
         "The server's WebSocket code refused a handshake whose Sec-WebSocket-Key/-Version was missing or "
         "altered: gevent-websocket's own 426/400/500, or a 500 from simple-websocket/wsproto (flask-sock).",
         "It answers 426 when Sec-WebSocket-Version is missing, 400 for an unsupported version or a "
         "missing/invalid Sec-WebSocket-Key, and 500 for a key that is not base64. wsdiag sent valid "
         "headers, so something between the client and the server removed or changed them: a CDN "
         "behaviour that does not forward Sec-WebSocket-Key/Version (CloudFront needs them in the origin "
         "request policy), an old proxy that drops unknown headers, or a hand-written client. "
         "simple-websocket (flask-sock) raises RemoteProtocolError ('Missing header') and Flask answers "
         "500. Adding a WebSocket handler changes nothing: it is already there.",
         "# nginx passes Sec-WebSocket-* by default; do not clear them:\n"
         "#   proxy_set_header Sec-WebSocket-Key \"\";   <- remove lines like this\n"
         "# CloudFront: origin request policy AllViewer, or forward Sec-WebSocket-Key,\n"
         "#   Sec-WebSocket-Version, Sec-WebSocket-Extensions and Sec-WebSocket-Protocol\n"),
    Code("WS221", "request-line-too-long", E, "answered {status} {reason}: the request line is {length} bytes, over the server's limit of {limit}",
         "Move the token out of the URL (a cookie, or the first message after the upgrade), or shorten it.",
         "The server refused the request line as too long before any WebSocket code ran.",
         "gevent's pywsgi refuses request lines over 8,192 bytes (MAX_REQUEST_LINE), gunicorn over 4,094 "
         "(limit_request_line). Browsers cannot set headers on WebSocket, so apps put auth tokens and JWTs "
         "in the query string, and long tokens cross the limit. Headers such as Cookie have larger limits.",
         "// browser: authenticate after the upgrade instead of in the URL\n"
         "const ws = new WebSocket(\"wss://example.com/ws\");\n"
         "ws.onopen = () => ws.send(JSON.stringify({token}));\n"),
    Code("WS222", "origin-rejected", E, "answered {status}: the app refuses this Origin ({origin}): {text!r}",
         "Allow the page's origin in the app's check, or probe with the Origin the real page sends (--origin).",
         "The refusal names the Origin header: the app (or a proxy) checks where the page came from.",
         "Browsers always send Origin on WebSocket and CORS does not apply; origin checks must list the "
         "exact scheme://host[:port] of the page, which changes behind TLS terminators and proxies.",
         "wsdiag probe --origin https://your.page.example ws://HOST/PATH   # what the browser sends\n"),
    Code("WS223", "host-not-trusted", E, "answered 400 {text!r}: Flask's TRUSTED_HOSTS rejects the Host header {host!r}",
         "Add the host clients use to TRUSTED_HOSTS, or make the proxy forward the public Host (proxy_set_header Host $host).",
         "Flask >= 3.1 checks the Host header against TRUSTED_HOSTS before routing and answers 400.",
         "Under gevent-websocket the same 400 is hidden behind a 101 and every path is refused alike; "
         "on other servers the text 'Host ... is not trusted.' is visible. nginx sends "
         "'Host: <upstream name>' unless proxy_set_header Host is set.",
         "app.config[\"TRUSTED_HOSTS\"] = [\"example.com\", \".example.com\"]\n"
         "# nginx: proxy_set_header Host $host;\n"),
    Code("WS224", "redirect-not-followed", E, "answered {status} to {location}, which browsers never follow on WebSocket; the redirect target {target}",
         "Point the client at the redirect target, or declare the route with strict_slashes=False.",
         "The handshake was redirected. wsdiag probed the Location once (same host only) to see whether it works.",
         "Werkzeug's strict_slashes answers '/ws' for a rule '/ws/' with 308 (merge_slashes does the same "
         "for '//'). Browsers fail the handshake with 'Unexpected response code: 308'.",
         "@sock.route(\"/ws/\", strict_slashes=False)   # or connect to the canonical path\n"),
    Code("WS226", "path-not-found", E, "answered 404: nothing serves {path} on this server{variant}",
         "Use the path the app really serves (blueprint url_prefix, proxy path rewriting, trailing slash).",
         "The server answered the handshake with 404 Not Found.",
         "A wrong path, a blueprint url_prefix the client does not use, or a proxy that adds or strips "
         "a path prefix. wsdiag also tried the path with the trailing slash toggled.",
         "wsdiag probe ws://HOST/THE/PATH/THE/APP/SERVES\n"),
    Code("WS227", "scheme-lost-behind-tls-proxy", E, "the app redirects a wss:// handshake to {location}: it does not know the client used TLS",
         "Tell the app about the TLS proxy: ProxyFix(app.wsgi_app, x_proto=1, x_host=1) and proxy_set_header X-Forwarded-Proto $scheme.",
         "A redirect (or URL) the app built for a wss:// request uses ws://.",
         "TLS ends at the proxy, so the app sees http and Werkzeug builds WebSocket URLs with ws://. "
         "Pages served over https may not open ws:// sockets (mixed content), and the same missing "
         "headers break Engine.IO's origin check.",
         "from werkzeug.middleware.proxy_fix import ProxyFix\n"
         "app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)\n"
         "# nginx: proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header Host $host;\n"),
    Code("WS225", "plain-get-refused", I, "a plain GET to {path} answers 400 (Werkzeug's websocket=True routing): browser visits and HTTP health checks of this URL fail",
         "Point health checks at a separate plain HTTP route.",
         "websocket=True rules (and flask-sock routes) refuse requests without upgrade headers.",
         "Werkzeug raises WebsocketMismatch for a plain GET, HEAD or OPTIONS to a WebSocket rule; load "
         "balancer health checks need a 2xx and mark the backend down.",
         "@app.route(\"/health\")\ndef health():\n    return \"ok\"\n"),
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
    # WS420-WS449: extensions (RFC 7692), messages and the closing handshake.
    # wsdiag/core/deflate.py, wsdiag/core/messages.py and wsdiag/net/session.py produce them.
    Code("WS420", "deflate-param-unknown", E, "the server accepted permessage-deflate with parameter {param!r}, which RFC 7692 does not define for a response",
         "Answer permessage-deflate only with the four RFC 7692 parameters.",
         "The Sec-WebSocket-Extensions answer carries a parameter a client cannot recognise.",
         "RFC 7692 section 7.1: the client must fail the connection; browsers do.",
         "Fix the server's extension negotiation (or disable permessage-deflate there)."),
    Code("WS421", "deflate-param-invalid", E, "the server's permessage-deflate parameter {param} has an invalid value ({value!r}: {rule})",
         "Send window bits as 8..15 without leading zeros, and *_no_context_takeover without a value.",
         "A permessage-deflate parameter in the answer has a value RFC 7692 forbids.",
         "RFC 7692 section 7.1: the client must fail the connection; browsers do.",
         "Fix the server's extension negotiation."),
    Code("WS422", "deflate-param-duplicate", E, "the server's permessage-deflate answer repeats {param}",
         "Send each permessage-deflate parameter at most once.",
         "The answer names one parameter twice.",
         "RFC 7692 section 7.1: the client must fail the connection.",
         "Fix the server's extension negotiation."),
    Code("WS423", "deflate-client-window-unoffered", E, "the server set client_max_window_bits, which the client did not offer ({offer!r})",
         "Answer client_max_window_bits only to a client that offered it.",
         "RFC 7692 section 7.1.2.2: without the client's offer the answer must not carry it.",
         "A client that did not offer it may not support a smaller window: it must fail the "
         "connection. Firefox offers bare 'permessage-deflate'.",
         "Fix the server's extension negotiation."),
    Code("WS424", "deflate-accepted-twice", E, "the server's answer accepts permessage-deflate {count} times",
         "Accept permessage-deflate once.",
         "The 101 carries more than one permessage-deflate element.",
         "RFC 7692 section 5: one negotiation response; clients fail the connection.",
         "Fix the server's extension negotiation."),
    Code("WS425", "deflate-answer-exceeds-offer", E, "the server's permessage-deflate answer {response!r} does not honour the offer {offer!r}",
         "Honour the limits the client asked for (server_max_window_bits, server_no_context_takeover).",
         "The answer grants the server more than any offer allowed.",
         "RFC 7692 section 7.1: the client must fail the connection.",
         "Fix the server's extension negotiation."),
    Code("WS426", "compressed-bit-misplaced", E, "the server set RSV1 (compressed) on a {frame} frame",
         "Set RSV1 only on the first frame of a compressed data message.",
         "RFC 7692 section 6.1: control frames and continuation frames never carry RSV1.",
         "Browsers fail the connection (1002).",
         "Fix the server's frame writer."),
    Code("WS427", "inflate-failed", E, "a compressed message from the server does not inflate with the negotiated window: {detail}",
         "Compress with the window and context rules the handshake agreed.",
         "RFC 7692 section 7.2: the message is not a valid raw DEFLATE stream for the agreement.",
         "Browsers fail the connection. A server that ignores server_max_window_bits or "
         "server_no_context_takeover it agreed to produces this.",
         "Fix the server's permessage-deflate implementation, or disable the extension."),
    Code("WS428", "invalid-utf8-text", E, "a text message from the server is not valid UTF-8 (at byte {offset})",
         "Send text messages as UTF-8; send other bytes as binary messages.",
         "RFC 6455 section 8.1: text messages are UTF-8.",
         "Browsers fail the connection with close code 1007 as soon as the bad bytes arrive, "
         "even in the middle of a fragmented message.",
         "Send binary data with a binary frame (e.g. ws.send(bytes))."),
    Code("WS429", "unexpected-continuation", E, "the server sent a continuation frame with no message begun",
         "Start each message with a text or binary frame.",
         "RFC 6455 section 5.4: a continuation frame continues a fragmented message.",
         "Browsers fail the connection (1002).",
         "Fix the server's frame writer."),
    Code("WS430", "interleaved-data-frame", E, "the server began a new {frame} message inside an unfinished {open_message} message",
         "Finish a fragmented message before sending the next.",
         "RFC 6455 section 5.4: fragments of different messages must not interleave.",
         "Browsers fail the connection (1002). Two threads writing one socket do this.",
         "Serialise writes to the socket (one writer or a lock)."),
    Code("WS431", "frame-flood", W, "the server sent {frames} frames ({bytes} bytes) in {window_ms} ms; wsdiag stopped reading at its limit",
         "Check why the server floods the socket (a ping loop, a broadcast storm).",
         "More frames or bytes than wsdiag records arrived in its window; the rest was counted, not kept.",
         "Browsers keep up or lag; the flood usually means a loop in the server.",
         "Read the server's send loop."),
    Code("WS432", "close-not-echoed", W, "the server did not answer wsdiag's close frame: {outcome} within {wait_ms} ms",
         "Answer a client's close frame with a close frame, then close the TCP connection.",
         "RFC 6455 section 5.5.1: an endpoint that receives a close frame sends one back.",
         "Without the echo the close is not clean: browsers report code 1006 (wasClean false).",
         "Let the WebSocket library finish the closing handshake (return from the handler after receive() gives None)."),
    Code("WS433", "close-code-garbled", W, "the server closed the session with code {close_code} ({reason!r}), which RFC 6455 forbids: its close codes arrive garbled",
         "Do not rely on close codes; with gevent-websocket 0.10.1 send an application message before closing.",
         "The server's own close frame (racing wsdiag's close) carries garbage where the status code belongs.",
         "gevent-websocket 0.10.1 sends the close reason's bytes where the code belongs: "
         "close(4001, 'policy') arrives as 28783 'licy' and browsers fail the connection (1006) "
         "instead of reporting 4001 (FAILURES.md FM-05). It races the pong, so a probe that stops "
         "at the first answer sees it only sometimes; wsdiag reads on through the closing handshake.",
         "Migrate to flask-sock/simple-websocket, or never depend on close codes and reasons."),
    Code("WS434", "http-after-close", W, "after the WebSocket session the server wrote HTTP into the stream ({line!r}{server_hint})",
         "Serve WebSockets with a production server; the development server writes a response after the session.",
         "An HTTP response followed the WebSocket close on the same connection.",
         "flask-sock on Werkzeug's development server writes 'HTTP/1.1 200 OK' with "
         "'Server: Werkzeug' after every session (FAILURES.md FM-13); on a client-initiated "
         "close Chromium then reports 'Invalid frame header' and close code 1006. The HTTP bytes "
         "sometimes come before the server's close echo, sometimes after.",
         "Development only: run gunicorn (gthread or gevent) or gevent's pywsgi for anything else."),
    Code("WS435", "error-response-in-stream", E, "the server wrote an HTTP error into the WebSocket stream ({line!r}{server_hint})",
         "Find why the worker failed mid-session: a worker timeout (gunicorn sync) or a crash.",
         "An HTTP 5xx response arrived on the upgraded connection.",
         "gunicorn's sync worker kills a long session at --timeout and writes '500 Internal "
         "Server Error' into the stream (FAILURES.md FM-12); browsers fail with 'Invalid frame header'.",
         "gunicorn --threads N (gthread) or -k gevent; never the sync worker for WebSockets."),
    Code("WS436", "close-ended-without-echo", I, "the server ended the connection without echoing wsdiag's close frame (browsers report 1006, not 1000)",
         "Usually harmless; let the WebSocket library send its close echo before the connection ends.",
         "wsdiag sent close 1000 and got EOF without a close frame.",
         "The session worked; only the client's close event is unclean (wasClean false, 1006). "
         "flask-sock/simple-websocket on threaded servers (gunicorn gthread, Werkzeug) race the "
         "close echo against the handler's return, so this comes and goes from run to run.",
         "Nothing to do unless clients rely on a clean close; then use a gevent server."),
    Code("WS437", "close-echo-garbled", I, "the server answered wsdiag's close 1000 {sent_reason!r} with code {close_code} ({reason!r}): clients that close with a reason get a broken close",
         "Nothing to fix for clients that close without a reason; otherwise see FAILURES.md FM-05.",
         "The echo of wsdiag's close frame carries the reason's bytes where the status code belongs.",
         "A tell of gevent-websocket 0.10.1: it echoes repr(bytearray(reason)) as the payload, so "
         "a browser's ws.close(1000, 'bye') ends with 1006 instead of 1000. The session itself works.",
         "Migrate to flask-sock/simple-websocket if clients need clean closes with reasons."),
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
    Code("WS506", "websocket-rule-non-get", E, "the WebSocket rule {route} allows {methods}: Werkzeug raises ValueError when it is registered, so the app does not even import",
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
    Code("WS508", "blueprint-hooks-skipped", I, "when routing fails for {route}, the hooks of blueprint {blueprint} ({hooks}) do not run; only app-level hooks do{handlers}",
         "Put logging or auth that must see failed upgrades in app-level hooks (before_app_request, app_errorhandler) or WSGI middleware.",
         "The WebSocket route belongs to a blueprint with its own before_request, url_value_preprocessor, "
         "after_request, teardown_request or errorhandler functions, and routing fails for it.",
         "Flask runs blueprint hooks and error handlers only once routing has found the blueprint "
         "(request.blueprints is empty on a routing failure); a hidden 400/404/308 happens before that, "
         "so the blueprint's logging and auth never see the failed upgrade, and its errorhandler(400) or "
         "errorhandler(WebsocketMismatch) never catches the mismatch (FAILURES FM-20). This misleads "
         "anyone reading logs for the failure.",
         "@app.before_request  # app-level: runs even when routing fails\n"
         "def log_upgrades():\n"
         "    if request.environ.get(\"wsgi.websocket\") is not None:\n"
         "        app.logger.info(\"upgrade %s\", request.path)\n"),
    Code("WS509", "socket-route-breaks-on-werkzeug-2", W, "the rule {route} (view {view}) works on Werkzeug {werkzeug} but every upgrade gets a hidden 400 on Werkzeug >= 2.0.2, where it needs websocket=True",
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
    # WS511-WS549: the app model (issue 11): stack-specific rules, each silent outside its stack
    Code("WS511", "file-does-not-parse", E, "{file}:{line}: Python cannot parse this file ({message}); a token scan found: {seen}",
         "Make the file parse on the Python that runs the app (a Python 2 file needs porting).",
         "The file is not valid Python for this interpreter, so its routes and servers cannot be analysed.",
         "Python 2 era files (print statements, 'except X, e') are common in gevent-websocket apps; "
         "the app cannot run on Python 3 as it is, and the check cannot vouch for it.",
         "Port the file to Python 3 (print(), 'except X as e'), then run wsdiag check again."),
    Code("WS512", "flask-sock-under-websocket-handler", E, "{launch} serves flask-sock routes through gevent-websocket's WebSocketHandler: every handshake is answered twice (double 101)",
         "Serve flask-sock apps without gevent-websocket's handler (gunicorn -k gevent or --threads, or a plain gevent WSGIServer).",
         "gevent-websocket upgrades the connection, then flask-sock runs its own handshake on the raw socket.",
         "The second 'HTTP/1.1 101' lands in the frame stream: browsers fail with 'Invalid frame header' (FAILURES FM-11).",
         "Use a server without WebSocketHandler for flask-sock; if Flask-SocketIO must coexist, uninstall gevent-websocket."),
    Code("WS513", "flask-sock-on-sync-worker", W, "gunicorn runs flask-sock routes on {worker} with one thread: each session blocks the worker and the worker timeout kills it mid-stream",
         "Run gunicorn with --threads N (gthread) or -k gevent for flask-sock apps.",
         "A sync worker serves one request at a time and must heartbeat between requests.",
         "After --timeout seconds (default 30) the arbiter kills the worker and a 500 is written into the stream (FAILURES FM-12).",
         "gunicorn --threads 100 app:app   # or: -k gevent"),
    Code("WS514", "socketio-workers-without-queue", E, "Flask-SocketIO runs under {workers} gunicorn workers with no message queue: clients get 'Invalid session' as requests land on other workers",
         "Run one worker per gunicorn (-w 1), behind sticky load balancing, with message_queue= for several processes.",
         "Engine.IO sessions live in one process; gunicorn balances requests across workers without stickiness.",
         "Polling and upgrade requests reach a worker that never saw the session: 400 'Invalid session' (FAILURES FM-25).",
         "gunicorn -w 1 ...; several processes need sticky sessions (nginx ip_hash) and SocketIO(app, message_queue=URL)."),
    Code("WS515", "socketio-gevent-worker-with-gevent-websocket", E, "Flask-SocketIO runs under gunicorn {worker} while gevent-websocket is installed: the WebSocket upgrade answers 500",
         "Uninstall gevent-websocket, or run gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1.",
         "python-engineio uses gevent-websocket whenever it imports, and the plain gevent worker does not provide it.",
         "engineio raises 'The gevent-websocket server is not configured appropriately' on every upgrade (FAILURES FM-10, FM-28).",
         "pip uninstall gevent-websocket   # or the GeventWebSocketWorker"),
    Code("WS516", "websocket-view-returns-immediately", E, "the WebSocket view {view} keeps the socket ({stored}) and returns without serving it: the server closes the socket when the view returns",
         "Keep the view running while the socket is in use (a receive loop, or sleep until it closes).",
         "gevent-websocket and flask-sock close the socket as soon as the view returns.",
         "A view that stores the socket in a registry and returns gives 101 then an immediate close (FAILURES FM-22).",
         "while not ws.closed:\n    message = ws.receive()\n    if message is None:\n        break"),
    Code("WS517", "receive-exception-swallowed", W, "{view} swallows exceptions around receive() with '{handler}': once the socket closes the loop spins forever",
         "Break out of the loop when receive() raises or returns None.",
         "After a close every receive() raises at once without yielding.",
         "'except Exception: continue' turns that into a busy loop that freezes the gevent hub and keeps the connection open (FAILURES FM-22).",
         "try:\n    message = ws.receive()\nexcept Exception:\n    break\nif message is None:\n    break"),
    Code("WS518", "gevent-not-monkey-patched", E, "{launch} serves flask-sock routes on gevent without monkey.patch_all(): after the first session every request hangs",
         "Call 'from gevent import monkey; monkey.patch_all()' as the first lines of the entry module.",
         "simple-websocket uses threading.Thread/Event, which block the gevent hub unless patched.",
         "The first session works, then 'Cannot switch to a different thread' and every later handshake hangs (FAILURES FM-14).",
         "from gevent import monkey\nmonkey.patch_all()   # first lines of the entry module"),
    Code("WS519", "gevent-monkey-patched-late", W, "monkey.patch_all() runs after {imported} was imported (line {first_line}): modules imported before it keep unpatched sockets and locks",
         "Move 'from gevent import monkey; monkey.patch_all()' above every other import.",
         "Modules imported before the patch hold references to the unpatched socket, ssl and threading.",
         "Late patching gives MonkeyPatchWarning and blocking calls that stall every greenlet (FAILURES FM-14).",
         "from gevent import monkey\nmonkey.patch_all()\n# ...then the other imports"),
    Code("WS520", "flask-sock-dev-server", I, "{launch} serves flask-sock routes on the Werkzeug development server: fine for development, but it writes an HTTP response after each session",
         "Use gunicorn (--threads or -k gevent) or gevent outside development.",
         "The development server writes its own response after flask-sock's session ends.",
         "Clients closing first may see 'Invalid frame header' (FAILURES FM-13).",
         "gunicorn --threads 100 app:app"),
    Code("WS521", "out-of-scope-framework", I, "{file} is a {framework} app: wsdiag check analyses Flask apps only and leaves it alone",
         "Nothing to do: wsdiag's static rules are for Flask WebSocket stacks.",
         "The file uses a framework other than Flask.",
         "Its routes and servers follow that framework's rules, which wsdiag does not model; it is never flagged as Flask.",
         ""),
    Code("WS522", "socketio-facts", I, "Flask-SocketIO at {endpoint}: async_mode {async_mode}, WebSocket driver {driver}, cors_allowed_origins {cors}, message queue {queue}; served by {workers} (from {source})",
         "Nothing to do: these are the facts the other Socket.IO findings and `wsdiag probe --socketio` build on.",
         "Flask-SocketIO's endpoint, the async mode python-engineio picks with the installed packages and the "
         "WebSocket driver that mode uses, the origins it accepts, its message queue and how many processes serve it.",
         "Several processes need a message queue and sticky sessions (FM-25); an async mode without a WebSocket "
         "driver has no WebSocket transport (FM-26); origins decide 'Not an accepted origin.' (FM-23).",
         ""),
    Code("WS523", "socketio-origins-cannot-match", W, "cors_allowed_origins {origins} cannot match the origin the app is served from: {problem}",
         "List each page origin exactly as the browser sends it: scheme://host[:port], https:// behind TLS, no path or trailing slash.",
         "python-engineio compares the request's Origin header with each listed origin as a string.",
         "A browser's Origin is scheme://host[:port]; an entry with a path, a trailing slash or no scheme never equals it, "
         "and an https page never sends an http:// origin. Every such request gets 400 'Not an accepted origin.' "
         "(FAILURES FM-23); '*' or an empty list (origin checks off) accept every origin.",
         "socketio = SocketIO(app, cors_allowed_origins=['https://chat.example.com'])"),
    Code("WS524", "socketio-no-websocket-driver", E, "Flask-SocketIO async_mode {async_mode} has no WebSocket driver here (python-engineio {engineio}): {consequence}",
         "pip install simple-websocket (threading and gevent modes), or serve with gevent-websocket's GeventWebSocketWorker in gevent mode.",
         "python-engineio's threading driver (and its gevent driver without gevent-websocket) speaks WebSocket through simple-websocket.",
         "From python-engineio 4.7.1 that import is unconditional: without simple-websocket the mode does not load and "
         "SocketIO() raises ValueError('Invalid async_mode specified'). Older releases start and offer no WebSocket "
         "upgrade (FAILURES FM-26, FM-26b).",
         "pip install simple-websocket"),
    Code("WS525", "health-check-on-websocket-route", E, "the {probe} requests {path}, which only the WebSocket rule {route} ({rule_at}) matches: every plain GET/HEAD gets 400 (WebsocketMismatch), so the probe always fails",
         "Add a plain HTTP route for health checks and point the probe at it.",
         "A health check (Dockerfile HEALTHCHECK, docker-compose healthcheck, Kubernetes probe, load balancer) "
         "requests a path that only a websocket=True rule (or a flask-sock route) matches.",
         "Health checks send plain GET or HEAD requests without upgrade headers. Werkzeug routes them as http:// "
         "and raises WebsocketMismatch (400 Bad Request) for a rule declared websocket=True, on every release from "
         "1.0 to 3.1, before any view or blueprint hook runs (FAILURES FM-21). The container is restarted, the pod "
         "never becomes ready, or the load balancer takes the instance out of service, while WebSocket clients "
         "would have been served.",
         "@app.route(\"/healthz\")          # plain HTTP, beside the WebSocket rule\n"
         "def healthz():\n"
         "    return \"ok\"\n"
         "# and point the probe at it, e.g.\n"
         "HEALTHCHECK CMD curl -fsS http://localhost:8000/healthz || exit 1\n"),
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
    Code("WS707", "double-handshake", E, "the upgrade was answered twice: after the 101 the stream carries a second {line!r} ({profiles})",
         "Serve flask-sock / simple-websocket apps without gevent-websocket's WebSocketHandler (gunicorn -k gevent or --threads, or a plain gevent WSGIServer); with Flask-SocketIO in the same app, uninstall gevent-websocket.",
         "Two WebSocket servers handled the same upgrade: gevent-websocket's handler answered 101, then the app's own WebSocket library ran a second handshake on the raw socket.",
         "The second 'HTTP/1.1 101' arrives where frames belong; its first byte 'H' (0x48) parses as a close frame with RSV1 set, so browsers fail with 'Invalid frame header' and websocket-client with 'rsv is not implemented'. Typical triggers: flask-sock under GeventWebSocketWorker or WSGIServer(handler_class=WebSocketHandler), and socketio.run in gevent mode with gevent-websocket installed (FAILURES FM-11, FM-28). The view itself runs and then sees the client go away, so the app's trace shows it ending early: that is a consequence, not the cause.",
         "# gunicorn: -k gevent (with monkey.patch_all()) or --threads 100, not GeventWebSocketWorker\n"
         "# gevent:   WSGIServer(('127.0.0.1', 5000), app)   # no handler_class=WebSocketHandler"),
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
    # -- 720-729 server identification and held sessions (core.fingerprint, net.hold) -----
    Code("WS720", "server-identified", I, "server stack: {stack} ({reasons})",
         "Nothing to fix; it tells which server's rules apply.",
         "wsdiag recognised the server software from traits of its answers.",
         "Each name comes from a tell (a header, a status text or a refusal only that software produces); "
         "a 101 alone proves nothing.",
         "wsdiag explain WS720"),
    Code("WS721", "server-unidentified", I, "cannot tell the server stack from these answers{hint}",
         "Run `wsdiag probe -p all URL`: its HTTP/1.0 and stripped requests draw answers that identify more stacks.",
         "No answer carried a trait that names the server software.",
         "wsdiag never assumes a server: without a tell it names none.",
         "wsdiag probe -p all ws://HOST/PATH\n"),
    Code("WS722", "idle-timeout", E, "an idle session was ended after {seconds}s with no close frame ({by}){pings}",
         "Send pings more often than the idle timeout (e.g. ping_interval=25), or raise the proxy's timeout.",
         "A held, idle WebSocket session ended without a close frame.",
         "A proxy or load balancer closes idle upgraded connections: nginx proxy_read_timeout (60 s by "
         "default), AWS ALB (60 s), Cloudflare (100 s). gevent-websocket never pings; simple-websocket "
         "pings only with ping_interval. A round number of seconds points at a timeout setting.",
         "# nginx, in the WebSocket location:\nproxy_read_timeout 3600s;\n"
         "# flask-sock: app.config['SOCK_SERVER_OPTIONS'] = {'ping_interval': 25}\n"),
    Code("WS723", "hold-survived", I, "an idle session stayed open for {seconds}s{pings}",
         "Nothing to fix.",
         "The held session was still open when wsdiag closed it.",
         "No idle timeout shorter than the hold was met.",
         "Hold longer than the suspected timeout (e.g. --hold 65 for 60 s defaults)."),
    Code("WS724", "hold-ended-by-server", W, "the server closed the idle session after {seconds}s with a close frame{code_text}",
         "Check the app's view: it ends sessions that are idle (or its worker recycles).",
         "The server side ended a held, idle session cleanly with a close frame.",
         "A close frame comes from the WebSocket endpoint itself (the app or its library), not from a "
         "TCP-level proxy timeout.",
         "Keep the view in its receive() loop; send keepalive messages if the app times out idle peers."),
    Code("WS725", "http-after-upgrade-on-hold", E, "{seconds}s into an idle session the server wrote an HTTP answer into the stream ({line!r})",
         "Run WebSocket routes on a worker that does not time out long requests (gunicorn --threads N, or -k gevent).",
         "HTTP bytes arrived on the upgraded socket while it was held.",
         "gunicorn's sync worker is killed after --timeout (30 s) and writes '500 Internal Server Error' "
         "into the upgraded stream; browsers report 'Invalid frame header'.",
         "gunicorn --threads 8 app:app   # or -k gevent\n"),
    Code("WS726", "server-stalls-after-a-session", E, "{served} got an answer, then {stalled} got none within {timeout_s}s: the server stops answering while a WebSocket session is open",
         "Call gevent.monkey.patch_all() first thing in the entry module (flask-sock under gevent), or give the server threads/workers.",
         "Some handshakes were answered and the rest, controls included, got no response at all.",
         "flask-sock under gevent without monkey.patch_all(): simple-websocket's OS thread fails "
         "('Cannot switch to a different thread') and its Event wait blocks the gevent hub, so every "
         "later request hangs. The same picture comes from a view that never yields under gevent "
         "(a busy receive() loop, an unpatched blocking call) or from gunicorn's sync worker, "
         "busy with the first session.",
         "from gevent import monkey\nmonkey.patch_all()  # the first lines, before Flask and anything else\n"
         "# gunicorn: --threads N (gthread) or -k gevent instead of the sync worker\n"),
    # -- 850-869 browsers as probes, bisection, repro bundles (wsdiag.net.browser, core.bisect) --
    Code("WS850", "bisect-minimal-difference", W, "{bad} vs {good}: {sentence}",
         "Make the server accept the failing form, or fix what sends it (see the hint).",
         "Changing one aspect of the failing request at a time toward the working one, this is "
         "the smallest difference that flips the verdict.",
         "Each candidate was sent to the real server; the difference is measured, not inferred. "
         "It points to the version window or proxy rule that treats the two forms differently.",
         "Read the hint: a Connection value points to Werkzeug 2.0.0/2.0.1, missing Upgrade/"
         "Connection to a proxy that drops hop-by-hop headers, the request-line version to "
         "proxy_http_version."),
    Code("WS851", "bisect-no-split", W, "{good} {good_verdict} and {bad} {bad_verdict}: nothing to bisect",
         "Bisect between a profile that works and one that fails.",
         "The two requests do not split: the working one must work and the failing one fail.",
         "Bisection needs a working and a failing request against the same URL.",
         "Run `wsdiag probe` first to see which profiles work."),
    Code("WS852", "bisect-inconclusive", W, "bisection of {bad} toward {good} ended {status} after {exchanges} exchanges",
         "Re-run (the verdict may be unstable), or compare the two requests by hand (-v).",
         "No set of changes flipped the verdict within the exchange budget, or the verdicts were unstable.",
         "A server whose answer depends on timing or state cannot be bisected reliably.",
         "Probe each profile several times to see whether the verdicts are stable."),
    Code("WS855", "browser-profile-stale", W, "{browser} {browser_outcome} but profile {profile} is {verdict}: the profile is stale ({differs})",
         "Run `wsdiag profiles --refresh` to re-capture the installed browsers' handshakes.",
         "The installed browser's real outcome differs from the verdict for the profile that models it.",
         "Profiles are captured once; browsers change what they send. The listed header "
         "differences between the browser's real request and the profile explain the split.",
         "wsdiag profiles --refresh   # rewrites the browser profiles from the installed browsers"),
    Code("WS856", "browser-handshake-differs", I, "{browser} sent a handshake that differs from profile {profile}: {differs}",
         "Nothing to fix if the verdicts agree; refresh the profiles to keep them exact.",
         "The browser's real request differs from its profile in some headers.",
         "Verdicts still agree, so the difference does not matter to this server.",
         "wsdiag profiles --refresh"),
    Code("WS857", "browser-not-run", W, "{browser} could not be run: {detail}",
         "Install the browser (apt-get install chromium / firefox-esr) or drop --browser.",
         "wsdiag could not start or drive the browser.",
         "A missing binary, a crash at start-up or an automation protocol that did not answer in time.",
         "Install the browser; WSDIAG_CHROMIUM / WSDIAG_FIREFOX name another binary."),
    Code("WS858", "browser-console-error", I, "{browser} logged: {message}",
         "Read the message: it is what the user's browser console shows.",
         "The browser's console reported an error while the page opened the socket.",
         "Browsers log the reason a handshake failed (e.g. 'Unexpected response code: 400').",
         "Compare with the report's findings."),
    Code("WS859", "replay-changed", I, "{subject}: {before} before, {after} now",
         "Nothing to fix: this compares a saved run with the server as it answers today.",
         "Resending the saved request bytes gave another verdict than the bundle recorded.",
         "Before/after a fix, the same bytes show what changed.",
         "wsdiag replay FILE --against URL"),
]

# -- 8xx (WS800-WS839) Socket.IO and Engine.IO: wsdiag.net.socketio, reasons from core.engineio --
FIX_SIO_ORIGIN = """\
# Either list the public origin(s) the pages are served from:
socketio = SocketIO(app, cors_allowed_origins=["https://app.example.com"])
# or make the proxy pass the host and scheme the browser used (nginx):
proxy_set_header Host $http_host;
proxy_set_header X-Forwarded-Host $host;
proxy_set_header X-Forwarded-Proto $scheme;
"""

FIX_SIO_WORKERS = """\
# one Engine.IO process per port, sticky load balancing in front, a queue between them:
gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 app:app
socketio = SocketIO(app, message_queue="redis://")   # when there are several processes
# nginx: upstream socketio_nodes { ip_hash; server 127.0.0.1:5000; server 127.0.0.1:5001; }
"""

_ALL += [
    Code("WS800", "socketio-connected", I, "Socket.IO connected to namespace {namespace} over {transport} (EIO {eio}, upgrades {upgrades})",
         "Nothing to fix.",
         "The Engine.IO OPEN packet arrived and the Socket.IO connect was accepted (40).",
         "This is what a healthy Socket.IO endpoint does for the path the probe took.",
         ""),
    Code("WS801", "socketio-connect-refused", E, "the connect handler refused namespace {namespace}: 44 {message!r}",
         "Give the client what the refusal asks for (auth payload, credentials, namespace).",
         "The transport is healthy; the Socket.IO connect was answered with CONNECT_ERROR (44).",
         "A @socketio.on('connect') handler returned False or raised ConnectionRefusedError. "
         "The JavaScript client reports connect_error and retries; anything that stops at the "
         "WebSocket layer sees a healthy connection.",
         "io(url, { auth: { token: '...' } })   // the auth payload the handler checks\n"
         "# server side, say why when refusing:\n"
         "raise ConnectionRefusedError('authentication failed')"),
    Code("WS802", "engineio-origin-rejected", E, "Engine.IO rejects the Origin {origin!r}: \"Not an accepted origin.\"{hidden}",
         "Set cors_allowed_origins to the pages' origin, or forward Host / X-Forwarded-Host / X-Forwarded-Proto.",
         "Engine.IO compares the Origin header with cors_allowed_origins, by default the server's own "
         "scheme://Host (or the X-Forwarded-Proto / X-Forwarded-Host variant).",
         "Behind a proxy that does not pass the browser's Host (nginx's default is $proxy_host) or "
         "terminates TLS without X-Forwarded-Proto, the same-origin default never matches. Flask-CORS "
         "does not help: browsers apply no CORS to WebSocket. Under gevent-websocket the 400 "
         "is hidden behind a 101 that closes at once.",
         FIX_SIO_ORIGIN),
    Code("WS803", "engineio-version-mismatch", E, "the server refuses EIO={eio}: \"The client is using an unsupported version of the Socket.IO or Engine.IO protocols\"",
         "Align the client and server major versions (docs/socketio-compatibility.md).",
         "The client speaks an Engine.IO revision the server does not (e.g. socket.io JS 2.x, EIO 3, "
         "against python-engineio >= 4, which accepts only EIO 4).",
         "python-engineio 4 and python-socketio 5 (Flask-SocketIO 5) speak EIO 4 / Socket.IO 5 only; "
         "python-engineio 3.x and python-socketio 4.x (Flask-SocketIO 4) speak EIO 3.",
         "# JS client 3.x/4.x  <->  Flask-SocketIO >= 5, python-socketio >= 5, python-engineio >= 4\n"
         "# JS client 1.x/2.x  <->  Flask-SocketIO 4.x, python-socketio 4.x, python-engineio 3.x\n"
         "pip install 'flask-socketio>=5'   # with the socket.io JS client 4.x"),
    Code("WS804", "engineio-invalid-session", E, "Engine.IO does not know session {sid}: \"Invalid session\" on {step}",
         "Run one Engine.IO process per port with sticky sessions (and message_queue= for several).",
         "A request carrying a sid reached a process that never created that session.",
         "Engine.IO sessions live in one process. Several gunicorn workers (or several servers) "
         "without sticky load balancing send the polling requests and the upgrade of one client to "
         "different processes; a session that expired gives the same message.",
         FIX_SIO_WORKERS),
    Code("WS805", "engineio-several-processes", E, "identical requests for the same session got different answers ({outcomes}): several Engine.IO processes without sticky sessions",
         "Use -w 1 per gunicorn (GeventWebSocketWorker), sticky load balancing (ip_hash), and message_queue=.",
         "Polling sessions were opened, then each was addressed again by its sid; some requests "
         "found their session and others got \"Invalid session\".",
         "A single process answers every request for a session it created; mixed answers to "
         "identical requests mean the requests were spread over processes that do not share "
         "Engine.IO state (gunicorn -w N, or a load balancer without stickiness). This is not a "
         "Werkzeug or header problem.",
         FIX_SIO_WORKERS),
    Code("WS806", "engineio-upgrade-headers-missing", E, "the request for transport=websocket reached Engine.IO without its Upgrade header: \"Invalid websocket upgrade\"",
         "Forward the upgrade on the proxy: proxy_http_version 1.1; Upgrade $http_upgrade; Connection \"upgrade\".",
         "The URL asks for transport=websocket but the Upgrade header did not arrive.",
         "Upgrade and Connection are hop-by-hop headers: a proxy drops them unless told to pass "
         "them on, and Engine.IO then refuses the request as an invalid upgrade.",
         FIX_NGINX),
    Code("WS807", "engineio-no-websocket-transport", E, "the server cannot serve the WebSocket transport ({detail})",
         "Install simple-websocket (threading, gevent) or serve under GeventWebSocketWorker.",
         "The OPEN packet offers no upgrade, or the upgrade is refused with a bare \"Bad Request\".",
         "The async mode has no WebSocket driver (e.g. threading without simple-websocket on older "
         "python-engineio): clients stay on long-polling, or fail when polling is disabled.",
         "pip install simple-websocket\n# or: gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 app:app"),
    Code("WS808", "reason-recovered-by-polling", I, "the WebSocket request was {how}; the same request over polling returned Engine.IO's reason: {message!r}",
         "Nothing to fix; it is how wsdiag read the reason.",
         "wsdiag replayed the refused or abandoned WebSocket request as transport=polling with the "
         "same Origin, EIO and sid.",
         "Under gevent-websocket Engine.IO's 400 is discarded after the 101; polling requests are "
         "plain HTTP, so the same checks answer with their message.",
         ""),
    Code("WS809", "engineio-gevent-websocket-not-serving", E, "the WebSocket request fails with {status} while polling works: python-engineio picked its gevent-websocket driver but the server does not run gevent-websocket's handler",
         "Serve with gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker, or uninstall gevent-websocket.",
         "Under gevent, python-engineio uses gevent-websocket whenever it can be imported; a server "
         "without WebSocketHandler (gunicorn -k gevent, plain WSGIServer) then raises RuntimeError "
         "(\"The gevent-websocket server is not configured appropriately\") on every upgrade.",
         "gevent-websocket is often pulled in by another package. Polling keeps working, so the "
         "JavaScript client silently stays on long-polling, or fails with transports=['websocket'].",
         "gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 app:app\n"
         "# or: pip uninstall gevent-websocket   (python-engineio then uses simple-websocket)"),
    Code("WS810", "engineio-transport-not-allowed", E, "the server does not allow transport={transport}: \"Invalid transport\"",
         "Allow the transport on the server (transports=[...]) or configure the client to use the server's.",
         "SocketIO(..., transports=[...]) excludes the transport the client asked for.",
         "Engine.IO refuses requests for transports not in its list.",
         "socketio = SocketIO(app, transports=[\"websocket\", \"polling\"])"),
    Code("WS811", "engineio-bad-request", E, "Engine.IO refuses the request: {message!r}",
         "Read the message; turn on engineio_logger=True to see the server's side.",
         "Engine.IO answered 400 with a message wsdiag has no specific cause for.",
         "Engine.IO's refusals are JSON strings in a 400 body.",
         "socketio = SocketIO(app, logger=True, engineio_logger=True)"),
    Code("WS812", "socketio-namespace-not-served", E, "the server does not serve namespace {namespace}: 44 {message!r}",
         "Connect to a namespace the server registers, or register it (@socketio.on('connect', namespace=...)).",
         "python-socketio answers a connect to a namespace without handlers with \"Unable to connect\".",
         "Client and server disagree about the namespace name (a missing leading '/', a typo).",
         "@socketio.on(\"connect\", namespace=\"/chat\")\ndef chat_connect(auth):\n    ..."),
    Code("WS813", "not-engineio", E, "{path} does not answer as Engine.IO ({detail})",
         "Check the Socket.IO path (SocketIO(path=...)) and that the server runs Flask-SocketIO there.",
         "No Engine.IO OPEN packet came back for the handshake.",
         "A wrong path, a proxy location that does not reach the app, or a server that is not a "
         "Socket.IO server answer something other than Engine.IO's handshake.",
         "io(url, { path: '/socket.io' })   // must match SocketIO(app, path='socket.io')"),
    Code("WS814", "socketio-no-connect-answer", E, "the OPEN packet arrived but nothing answered the Socket.IO connect within {seconds}s",
         "Check that the endpoint is a Socket.IO server (not bare Engine.IO) and that its handlers do not block.",
         "Engine.IO opened the session, yet the CONNECT (40) got neither 40 nor 44.",
         "A bare Engine.IO server, or a connect handler that blocks (an unpatched blocking call "
         "under gevent), never answers the connect.",
         ""),
    Code("WS815", "socketio-upgrade-stalled", E, "the JavaScript client's path stops at {step}: {detail}",
         "Fix what stops the upgrade; until then clients stay on long-polling.",
         "The polling session works but the upgrade of that session to WebSocket does not complete.",
         "The JS client opens a polling session, then upgrades it on the same sid (2probe, 3probe, 5); "
         "a failure here leaves it on polling (slow, and broken with several processes).",
         ""),
    Code("WS816", "socketio-websocket-failed-polling-works", E, "the WebSocket transport fails ({detail}) while polling works",
         "Read the server log for the WebSocket request; clients set to transports=['websocket'] will fail.",
         "Polling requests are answered, the WebSocket transport is not; no Engine.IO message explains it.",
         "Something between the client and Engine.IO (a proxy, the WSGI server) handles WebSocket "
         "requests differently from plain HTTP.",
         ""),
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
