"""Client profiles: the exact opening handshake each kind of client sends.

Rules this module keeps:

* Pure core: standard library only, data and string formatting, no I/O.
* A profile is data: the request-line version and the header lines in wire order with
  their exact casing. Values may hold the placeholders ``{host}``, ``{origin}`` and
  ``{key}``; ``handshake.build_request`` fills them.
* ``driver`` says who sends the bytes: ``raw`` (wsdiag's own socket code, byte-exact) or
  ``websocket-client`` (the real library connects, so the verdict is what it would do).
* ``source`` says where the bytes come from, so a reader can check them.
"""

from __future__ import annotations

from wsdiag.core.record import FrozenRecord

# The order in which `--profile all` and `wsdiag profiles` list them.
ORDER = ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal", "http10", "stripped")
DEFAULT = ("chrome", "firefox", "firefox-legacy", "websocket-client", "minimal")


class Profile(FrozenRecord):
    """One client's opening handshake, as data."""

    __slots__ = (
        "name", "description", "source", "headers", "http_version", "driver", "upgrade", "expect_service",
        "tags",
    )
    _defaults = {
        "headers": (), "http_version": "HTTP/1.1", "driver": "raw", "upgrade": True, "expect_service": True,
        "tags": (),
    }
    name: str
    description: str
    source: str
    headers: tuple[tuple[str, str], ...]
    http_version: str
    driver: str
    upgrade: bool  # False: the profile deliberately sends no upgrade request
    # False for proxy simulations: they show what a broken intermediary would make of the
    # request; their failure is evidence, not a verdict on the server.
    expect_service: bool
    tags: tuple[str, ...]

    def header(self, name: str) -> str | None:
        """The template value of the first header called ``name`` (case-insensitive)."""
        low = name.lower()
        for key, value in self.headers:
            if key.lower() == low:
                return value
        return None

    @property
    def connection(self) -> str | None:
        return self.header("Connection")


CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/156.0.0.0 Safari/537.36"
)
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"
FIREFOX_LEGACY_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"

_PROFILES = [
    Profile(
        "chrome",
        "Chromium/Chrome: Connection: Upgrade, permessage-deflate offered",
        "captured from headless Chromium 156 (Debian package chromium); re-checked by the browser tests",
        (
            ("Host", "{host}"),
            ("Connection", "Upgrade"),
            ("Pragma", "no-cache"),
            ("Cache-Control", "no-cache"),
            ("User-Agent", CHROME_UA),
            ("Upgrade", "websocket"),
            ("Origin", "{origin}"),
            ("Sec-WebSocket-Version", "13"),
            ("Accept-Encoding", "gzip, deflate, br, zstd"),
            ("Accept-Language", "en-US,en;q=0.9"),
            ("Sec-WebSocket-Key", "{key}"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ),
        tags=("browser",),
    ),
    Profile(
        "firefox",
        "Firefox (current ESR): Connection: Upgrade, Sec-Fetch-* headers",
        "captured from headless Firefox ESR 153 (Debian package firefox-esr); re-checked by the browser tests",
        (
            ("Host", "{host}"),
            ("User-Agent", FIREFOX_UA),
            ("Accept", "*/*"),
            ("Accept-Language", "en-US,en;q=0.9"),
            ("Accept-Encoding", "gzip, deflate, br, zstd"),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "{origin}"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
            ("Sec-WebSocket-Key", "{key}"),
            ("Connection", "Upgrade"),
            ("Sec-Fetch-Dest", "empty"),
            ("Sec-Fetch-Mode", "websocket"),
            ("Sec-Fetch-Site", "same-origin"),
            ("Pragma", "no-cache"),
            ("Cache-Control", "no-cache"),
            ("Upgrade", "websocket"),
        ),
        tags=("browser",),
    ),
    Profile(
        "firefox-legacy",
        "older Firefox: Connection: keep-alive, Upgrade",
        "the Firefox ESR capture with 'Connection: keep-alive, Upgrade', as Firefox sent it "
        "for many releases (public bug reports); no old browser is run to confirm it",
        (
            ("Host", "{host}"),
            ("User-Agent", FIREFOX_LEGACY_UA),
            ("Accept", "*/*"),
            ("Accept-Language", "en-US,en;q=0.5"),
            ("Accept-Encoding", "gzip, deflate, br"),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "{origin}"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
            ("Sec-WebSocket-Key", "{key}"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-Fetch-Dest", "websocket"),
            ("Sec-Fetch-Mode", "websocket"),
            ("Sec-Fetch-Site", "same-origin"),
            ("Pragma", "no-cache"),
            ("Cache-Control", "no-cache"),
            ("Upgrade", "websocket"),
        ),
        tags=("browser",),
    ),
    Profile(
        "websocket-client",
        "the websocket-client Python library, connecting through the library itself",
        "generated at run time by the installed websocket-client (its own handshake and checks)",
        (
            ("Upgrade", "websocket"),
            ("Host", "{host}"),
            ("Origin", "{origin}"),
            ("Sec-WebSocket-Key", "{key}"),
            ("Sec-WebSocket-Version", "13"),
            ("Connection", "Upgrade"),
        ),
        driver="websocket-client",
        tags=("library",),
    ),
    Profile(
        "minimal",
        "RFC 6455 section 4.1 minimum: only the required headers",
        "RFC 6455 section 4.1",
        (
            ("Host", "{host}"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "{key}"),
            ("Sec-WebSocket-Version", "13"),
        ),
    ),
    Profile(
        "http10",
        "a reverse proxy forwarding the upgrade as HTTP/1.0 (nginx without proxy_http_version 1.1)",
        "the request nginx sends upstream with Upgrade/Connection set but no proxy_http_version",
        (
            ("Host", "{host}"),
            ("Upgrade", "websocket"),
            ("Connection", "upgrade"),
            ("User-Agent", CHROME_UA),
            ("Origin", "{origin}"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "{key}"),
        ),
        http_version="HTTP/1.0",
        expect_service=False,
        tags=("proxy",),
    ),
    Profile(
        "stripped",
        "a reverse proxy that drops the hop-by-hop Upgrade and Connection headers",
        "the request a proxy without WebSocket directives forwards: end-to-end headers only",
        (
            ("Host", "{host}"),
            ("User-Agent", CHROME_UA),
            ("Origin", "{origin}"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "{key}"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ),
        upgrade=False,
        expect_service=False,
        tags=("proxy",),
    ),
]

PROFILES: dict[str, Profile] = {p.name: p for p in _PROFILES}


class UnknownProfile(ValueError):
    """A profile name that is not in PROFILES."""


def resolve(names: tuple[str, ...] | list[str]) -> list[Profile]:
    """Turn ``--profile`` values (names, ``all``, ``default``, comma lists) into profiles."""
    wanted: list[str] = []
    for raw in names or ("default",):
        for name in (n.strip().lower() for n in raw.split(",")):
            if not name:
                continue
            if name == "all":
                wanted.extend(ORDER)
            elif name == "default":
                wanted.extend(DEFAULT)
            elif name in PROFILES:
                wanted.append(name)
            else:
                raise UnknownProfile(
                    f"unknown profile {name!r} (choose from: {', '.join(ORDER)}, all, default)"
                )
    seen: dict[str, None] = dict.fromkeys(wanted)
    return [PROFILES[n] for n in seen]
