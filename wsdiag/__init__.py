"""wsdiag: say where, why and how to fix a WebSocket upgrade that dies.

Nothing heavy is imported here: the CLI's start-up time depends on it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
