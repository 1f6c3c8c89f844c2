"""``flask wsdiag check``: the ``wsdiag check`` command inside Flask's own CLI.

Registered through the ``flask.commands`` entry point, so ``flask --app myapp wsdiag check``
(or ``FLASK_APP=myapp flask wsdiag check``) checks the app Flask's CLI loads, with every
option of ``wsdiag check``. This module only re-exposes the CLI's command object: options,
output and exit statuses are the same in both places.
"""

from __future__ import annotations

import click

from wsdiag.cli import check


@click.group("wsdiag")
def wsdiag() -> None:
    """wsdiag: find the WebSocket routes of this app that will fail, and why."""


wsdiag.add_command(check, "check")
