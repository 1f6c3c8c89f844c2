"""The sample Flask + gevent-websocket server: the report's three variants, made correct.

Importing this package imports nothing heavy; ``app`` imports Flask, ``server`` gevent.
"""

VARIANTS = {
    "route": "@app.route('/ws') without websocket=True (the report's original code)",
    "hook": "the same route, with an app-level before_request hook that serves the socket (the workaround)",
    "fixed": "@app.route('/ws', websocket=True) (the fix)",
}
