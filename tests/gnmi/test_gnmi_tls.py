"""TLS on the gNMI port, as users meet it: mutual TLS with the client pair the agent writes,
and each kind of mismatch (no client certificate, plain text against TLS, TLS against plain text,
a CA the server's certificate is not from) refused with a status that says what went wrong."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import pytest
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from qstrata.agents.testbed.hosting import free_ports
from qstrata.bindings.wire.tls import explain_connect_failure

HOST = "127.0.0.1"


def _listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), 0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def agents(agent):
    """Two agents without twins (conftest's `agent` factory): one with --gnmi-mtls, one with
    --gnmi-insecure."""
    out = {}
    for name, flag in (("mtls", "--gnmi-mtls"), ("plain", "--gnmi-insecure")):
        port = free_ports(HOST, 1)[0]
        proc = agent("qkd", name, twin=False, extra_args=("--gnmi-port", str(port), flag))
        deadline = time.monotonic() + 10
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        out[name] = {"port": port, "creds": proc.credentials}
    return out


def _capabilities(channel: grpc.Channel, creds: dict):
    md = [("username", creds["username"]), ("password", creds["password"])]
    return gnmi_pb2_grpc.gNMIStub(channel).Capabilities(gnmi_pb2.CapabilityRequest(), metadata=md, timeout=10)


def test_mutual_tls_with_the_agents_client_pair(agents):
    a = agents["mtls"]
    c = a["creds"]
    assert {"ca", "client_cert", "client_key"} <= set(c)
    tls = grpc.ssl_channel_credentials(Path(c["ca"]).read_bytes(), Path(c["client_key"]).read_bytes(),
                                       Path(c["client_cert"]).read_bytes())
    with grpc.secure_channel(f"{HOST}:{a['port']}", tls) as ch:
        assert _capabilities(ch, c).gNMI_version == "0.10.0"


def test_without_a_client_certificate_the_handshake_is_refused(agents):
    a = agents["mtls"]
    with grpc.secure_channel(f"{HOST}:{a['port']}", grpc.ssl_channel_credentials(Path(a["creds"]["ca"]).read_bytes())) as ch:
        with pytest.raises(grpc.RpcError) as err:
            _capabilities(ch, a["creds"])
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "client certificate" in explain_connect_failure(err.value.details(), tls=True)


def test_plain_text_against_tls_and_tls_against_plain_text_are_refused(agents):
    tls_agent, plain_agent = agents["mtls"], agents["plain"]
    with grpc.insecure_channel(f"{HOST}:{tls_agent['port']}") as ch:
        with pytest.raises(grpc.RpcError) as err:
            _capabilities(ch, tls_agent["creds"])
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "may serve TLS" in explain_connect_failure(err.value.details(), tls=False)
    ca = Path(tls_agent["creds"]["ca"]).read_bytes()
    with grpc.secure_channel(f"{HOST}:{plain_agent['port']}", grpc.ssl_channel_credentials(ca)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            _capabilities(ch, plain_agent["creds"])
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "does not speak TLS" in explain_connect_failure(err.value.details(), tls=True)
    # and plain text against the plain-text agent works
    with grpc.insecure_channel(f"{HOST}:{plain_agent['port']}") as ch:
        assert _capabilities(ch, plain_agent["creds"]).gNMI_version == "0.10.0"


def test_a_ca_the_server_certificate_is_not_from_is_refused(agents, tmp_path):
    """The CA of another agent (e.g. copied from the wrong state directory)."""
    a, other = agents["mtls"], agents["plain"]
    other_ca = other["creds"].get("ca")
    if other_ca is None:  # the plain-text agent writes no CA: make a foreign one
        from qstrata.agents.access.pki import ensure_tls
        other_ca = str(ensure_tls(tmp_path / "foreign").ca)
    c = a["creds"]
    tls = grpc.ssl_channel_credentials(Path(other_ca).read_bytes(), Path(c["client_key"]).read_bytes(),
                                       Path(c["client_cert"]).read_bytes())
    with grpc.secure_channel(f"{HOST}:{a['port']}", tls) as ch:
        with pytest.raises(grpc.RpcError) as err:
            _capabilities(ch, c)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not signed by the CA given" in explain_connect_failure(err.value.details(), tls=True)


def test_the_collector_says_why_a_target_refuses_tls(agents):
    """The collector's session reason for a TLS agent collected in plain text and the other way
    round (what `qstrata collect` shows per target)."""
    from qstrata.collectors.session import classify
    tls_agent, plain_agent = agents["mtls"], agents["plain"]
    ca = Path(tls_agent["creds"]["ca"]).read_bytes()
    with grpc.secure_channel(f"{HOST}:{plain_agent['port']}", grpc.ssl_channel_credentials(ca)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            _capabilities(ch, plain_agent["creds"])
    outcome = classify(err.value.code(), err.value.details(), tls=True)
    assert outcome.state == "failed" and "does not speak TLS" in outcome.reason
