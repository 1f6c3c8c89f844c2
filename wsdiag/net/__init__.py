"""Edges: network I/O (transport, the websocket-client profile, probe orchestration, trace fetch)."""
