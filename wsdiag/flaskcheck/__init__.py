"""Everything that looks inside a Flask app.

* ``trace``: stage tracing inside a running app (where did an upgrade request die?).
* ``static``: the source scan of ``wsdiag check`` (pure: standard library ``ast``).
* ``inprocess``: ``wsdiag check --app``, routing upgrades with the installed Werkzeug.
* ``fix``: source edits for ``wsdiag check --fix`` / ``--diff``; ``run``: one check run.

Nothing is imported here, so importing a submodule never drags Flask in by accident.
"""
