"""The served side: everything that imports Flask, Werkzeug or gevent.

* ``trace``: the WsdiagTrace extension (stage tracing inside a running app) and its channel.
* ``inprocess``: ``wsdiag check --app``, routing upgrades with the installed Werkzeug.
* ``appserver``: the child that loads a user's app and serves it (``probe --app``).
* ``sample``/``server``: the built-in sample app and the server that runs it.

Importing this package imports nothing heavy, so ``VARIANTS`` is safe for the CLI to read.
"""

VARIANTS = {
    "route": "@app.route('/ws') without websocket=True (the report's original code)",
    "hook": "the same route, with an app-level before_request hook that serves the socket (the workaround)",
    "fixed": "@app.route('/ws', websocket=True) (the fix)",
}
