"""Optional dependencies (layer wsdiag.flaskapp, imports nothing heavy): what plain ``pip install wsdiag`` lacks.

gevent and gevent-websocket are the ``wsdiag[gevent]`` extra, not dependencies: gevent-websocket
merely installed changes other stacks (FAILURES FM-28), so the diagnostic must not bring it.
Only the commands that serve through gevent-websocket need it: ``serve-sample``, ``demo`` and
``probe --app`` when the app is served on gevent-websocket. Looked up without importing them.
"""

from __future__ import annotations

GEVENT_EXTRA = "pip install 'wsdiag[gevent]'"


def missing_gevent(what: str = "this command") -> str | None:
    """One line saying what to install when gevent or gevent-websocket is missing, else None."""
    import importlib.util

    missing = [dist for mod, dist in (("gevent", "gevent"), ("geventwebsocket", "gevent-websocket"))
               if importlib.util.find_spec(mod) is None]
    if not missing:
        return None
    return (f"{what} serves through gevent-websocket, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {GEVENT_EXTRA}")
