"""Engine.IO / Socket.IO as text (wsdiag.core.engineio): pure, no sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsdiag.core import engineio as e
from wsdiag.core.codes import BY_NAME


@pytest.mark.parametrize("resource,expected", [
    ("/socket.io/", True), ("/socket.io", True), ("/app/socket.io/", True), ("/x?EIO=4&transport=polling", True),
    ("/ws", False), ("/socket.iox/", False), ("/?eio=4", False), ("/socket.io.js", False),
])
def test_socketio_url_detection(resource, expected):
    assert e.is_socketio_url(resource) is expected


def test_engineio_resource_adds_eio_and_transport_and_keeps_other_query():
    assert e.engineio_resource("/socket.io/", eio=4, transport="websocket") == "/socket.io/?EIO=4&transport=websocket"
    assert e.engineio_resource("/socket.io/?token=a%20b&EIO=3", eio=4, transport="polling", sid="S1") == \
        "/socket.io/?EIO=3&transport=polling&sid=S1&b64=1&token=a+b"  # EIO 3 polling: text framing
    # --eio given: it wins over the URL's EIO=
    assert e.engineio_resource("/socket.io/?EIO=3", eio=4, transport="polling", keep_eio=False).startswith("/socket.io/?EIO=4&")
    # --socketio PATH replaces the path; a bare root gets the default path
    assert e.engineio_resource("/chat?x=1", eio=4, transport="polling", path="/sio/").startswith("/sio/?EIO=4&transport=polling")
    assert e.engineio_resource("/", eio=4, transport="websocket").startswith("/socket.io/?")
    assert e.eio_of("/socket.io/?EIO=3&transport=polling") == 3 and e.eio_of("/socket.io/") is None


def test_packets_and_payloads_both_revisions():
    assert e.parse_packet('0{"sid":"x"}') == (e.OPEN, '{"sid":"x"}')
    assert e.parse_packet("2") == (e.PING, "")
    with pytest.raises(e.EngineIOError):
        e.parse_packet("")
    with pytest.raises(e.EngineIOError):
        e.parse_packet("9")
    assert e.encode_payload(["40", "2"], 4) == "40\x1e2"
    assert e.decode_payload("40\x1e2", 4) == ["40", "2"]
    assert e.encode_payload(["40", "2probe"], 3) == "2:406:2probe"
    assert e.decode_payload("2:406:2probe", 3) == ["40", "2probe"]
    with pytest.raises(e.EngineIOError):
        e.decode_payload("x:40", 3)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x1e"), min_size=1), max_size=5),
       st.sampled_from([3, 4]))
def test_payload_round_trip(packets, eio):
    assert e.decode_payload(e.encode_payload(packets, eio), eio) == packets


@given(st.text())
def test_parsers_raise_only_engineio_error(text):
    for fn in (e.parse_packet, e.parse_open, e.parse_socketio, lambda t: e.decode_payload(t, 3)):
        try:
            fn(text)
        except e.EngineIOError:
            pass


def test_open_packet_as_python_engineio_4_sends_it():
    info = e.parse_open('{"sid":"abc","upgrades":["websocket"],"pingTimeout":20000,"pingInterval":25000,"maxPayload":1000000}')
    assert (info.sid, info.upgrades, info.ping_interval, info.ping_timeout) == ("abc", ["websocket"], 25000, 20000)
    with pytest.raises(e.EngineIOError):
        e.parse_open('{"upgrades":[]}')
    with pytest.raises(e.EngineIOError):
        e.parse_open("not json")


def test_socketio_connect_and_answers():
    assert e.encode_connect() == "40"
    assert e.encode_connect("chat") == "40/chat,"
    assert e.encode_connect("/", {"token": "t"}) == '40{"token":"t"}'
    assert e.encode_connect("/chat", {"a": 1}) == '40/chat,{"a":1}'
    assert e.encode_connect("/chat", {"a": 1}, eio=3) == "40/chat"  # Socket.IO rev 4: no auth payload
    assert e.encode_disconnect("/chat") == "41/chat,"
    ok = e.parse_socketio('0{"sid":"s"}')
    assert (ok.ptype, ok.namespace, ok.data) == (e.SIO_CONNECT, "/", {"sid": "s"})
    refused = e.parse_socketio('4/chat,{"message":"Connection rejected by server"}')
    assert (refused.ptype, refused.namespace) == (e.SIO_CONNECT_ERROR, "/chat")
    assert e.connect_error_message(refused) == "Connection rejected by server"
    assert e.connect_error_message(e.parse_socketio('4{"message":"no","data":{"x":1}}')) == 'no (data: {"x": 1})'
    assert e.connect_error_message(e.parse_socketio('4"Unable to connect"')) == "Unable to connect"  # rev 4 form


@pytest.mark.parametrize("message,name", [
    ("Not an accepted origin.", "engineio-origin-rejected"),
    ("The client is using an unsupported version of the Socket.IO or Engine.IO protocols", "engineio-version-mismatch"),
    ("Invalid websocket upgrade", "engineio-upgrade-headers-missing"),
    ("Invalid session Ab12", "engineio-invalid-session"),
    ("Invalid transport", "engineio-transport-not-allowed"),
    ("Bad Request", "engineio-no-websocket-transport"),
    ("Unexpected HTTP request", "engineio-bad-request"),
    ("something new", "engineio-bad-request"),
])
def test_every_engineio_message_maps_to_a_registered_code(message, name):
    assert e.reason_for(message) == name
    assert name in BY_NAME and BY_NAME[name].code.startswith("WS8")
    assert e.server_message(json.dumps(message).encode()) == message


def test_server_message_only_reads_json_strings():
    assert e.server_message(b"<html>400</html>") is None
    assert e.server_message(b'{"a":1}') is None
    assert e.server_message(b'"unterminated') is None


def _run(kind, **kw):
    r = e.PathRun(kind)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_diagnose_healthy_has_only_the_info_fact():
    op = e.OpenInfo("s", ["websocket"], 25000, 20000)
    r = e.SioResult("ws://h/socket.io/", 4, "/", "http://h",
                    websocket=_run("websocket", reached="connected", open=op, connect=("40", {})),
                    polling=_run("polling", reached="upgraded", open=op, connect=("40", {})),
                    workers={"sessions": 6, "opened": 6, "outcomes": {"200": 18}})
    causes, facts = e.diagnose(r)
    assert causes == [] and {f.info.name for f in facts} == {"socketio-connected"}


def test_diagnose_several_processes_leads_before_invalid_session():
    op = e.OpenInfo("s", ["websocket"])
    r = e.SioResult("ws://h/socket.io/", 4, "/", "http://h",
                    websocket=_run("websocket", reached="connected", open=op, connect=("40", {})),
                    polling=_run("polling", reached="open", open=op, stop_step="connect", status=400,
                                 message="Invalid session s"),
                    workers={"sessions": 6, "opened": 6, "outcomes": {"200": 5, "400 Invalid session": 13}})
    causes, _ = e.diagnose(r)
    assert [c.info.name for c in causes] == ["engineio-several-processes", "engineio-invalid-session"]
    assert causes[0].rank == 1 and "5x 200" in causes[0].summary


OPEN = e.OpenInfo("s", ["websocket"], 25000, 20000)


@pytest.mark.parametrize("ws,pol,expected", [
    # upgrades [] in the OPEN packet, websocket refused with a bare "Bad Request" (python-engineio 3.14 / 4.0.1 threading)
    (dict(stop_step="handshake", status=400, message="Bad Request"),
     dict(reached="connected", open=e.OpenInfo("s", []), connect=("40", None), stop_step="upgrade", no_upgrade=True),
     ["engineio-no-websocket-transport"]),
    # a message wsdiag has no specific cause for: quoted as it is
    (dict(stop_step="handshake", status=400, message="Unexpected HTTP request"),
     dict(reached="upgraded", open=OPEN, connect=("40", {})), ["engineio-bad-request"]),
    # polling works, the upgrade of the session stops without any message
    (dict(reached="connected", open=OPEN, connect=("40", {})),
     dict(reached="upgrade 101", open=OPEN, connect=("40", {}), stop_step="upgrade probe", detail="101, then silence"),
     ["socketio-upgrade-stalled"]),
    # websocket refused (403 from something in front) while polling works, no Engine.IO message
    (dict(stop_step="handshake", status=403),
     dict(reached="upgraded", open=OPEN, connect=("40", {})), ["socketio-websocket-failed-polling-works"]),
    # 500 on websocket while polling works: the gevent-websocket driver without its handler (FM-28)
    (dict(stop_step="handshake", status=500),
     dict(reached="upgrade 101", open=OPEN, connect=("40", {}), stop_step="upgrade handshake", status=500),
     ["engineio-gevent-websocket-not-serving"]),
])
def test_diagnose_shapes_without_a_server_message(ws, pol, expected):
    r = e.SioResult("ws://h/socket.io/", 4, "/", "http://h", websocket=_run("websocket", **ws), polling=_run("polling", **pol))
    causes, _ = e.diagnose(r)
    assert [c.info.name for c in causes] == expected


@given(st.fixed_dictionaries({}, optional={
    "reached": st.sampled_from(["start", "101", "open", "connected", "connect refused", "upgrade 101", "upgraded"]),
    "status": st.sampled_from([None, 101, 200, 400, 403, 404, 500]),
    "message": st.sampled_from([None, "Bad Request", "Invalid session x", "Not an accepted origin.", "x"]),
    "error": st.sampled_from([None, "connection-refused", "no-response", "not-a-code"]),
    "abandoned": st.booleans(), "not_engineio": st.booleans(), "no_answer": st.booleans(), "no_upgrade": st.booleans(),
    "stop_step": st.sampled_from([None, "handshake", "open", "connect", "upgrade", "upgrade handshake", "upgrade probe"]),
    "connect": st.sampled_from([None, ("40", {}), ("44", "no"), ("44", "Unable to connect")]),
    "open": st.sampled_from([None, OPEN]),
}), st.sampled_from([None, {"how": "x", "message": "Invalid session s", "status": 400}, {"how": "x", "opened": True}]),
    st.sampled_from([None, {"outcomes": {"200": 3, "400 Invalid session": 2}, "opened": 2}]))
def test_diagnose_never_raises_and_ranks_registered_codes(state, replay, workers):
    r = e.SioResult("ws://h/socket.io/", 4, "/", "http://h", websocket=_run("websocket", **state),
                    polling=_run("polling", **state), replay=replay, workers=workers)
    causes, facts = e.diagnose(r)
    assert [c.rank for c in causes] == list(range(1, len(causes) + 1))
    assert len({c.code for c in causes}) == len(causes)
    for f in causes + facts:
        assert f.summary and f.info.code.startswith("WS")
