"""gNMI's TLS: the agent's CA and certificates (`qstrata.agents.access.pki`, shared by every front
end) as gRPC credentials, and what a client can tell its user about a refused TLS connection."""

from __future__ import annotations

from qstrata.agents.access.pki import TlsFiles, ensure_tls

__all__ = ["TlsFiles", "ensure_tls", "explain_connect_failure", "server_credentials"]


def server_credentials(tls: TlsFiles, *, require_client_auth: bool = False):
    import grpc
    return grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), tls.cert.read_bytes())],
        root_certificates=tls.ca.read_bytes() if require_client_auth else None,
        require_client_auth=require_client_auth)


# gRPC reports a failed TLS set-up as UNAVAILABLE with OpenSSL's words; the client half of "a TLS
# mismatch gives a clear message on both sides" (the agent's side is gRPC's own handshake log).
_EXPLANATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("WRONG_VERSION_NUMBER",),
     "the target does not speak TLS on this port (it serves plain text: connect without TLS)"),
    (("CERTIFICATE_VERIFY_FAILED", "unable to get local issuer certificate"),
     "the target's certificate is not signed by the CA given (use the CA its credentials.json names)"),
    (("Hostname Verification", "Peer name", "not in peer certificate"),
     "the target's certificate does not name the address used (connect by a name it lists, or give "
     "the agent --gnmi-hostname)"),
    (("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_REQUIRED", "certificate required"),
     "the target requires a client certificate (mutual TLS: give the client pair its credentials.json names)"),
)


def explain_connect_failure(details: str, *, tls: bool) -> str | None:
    """What a client can tell its user about a refused gRPC connection, or None when the words
    are not about TLS. `tls`: whether the client offered TLS (a plain-text client meets a TLS
    server as a closed socket; a TLS client without a certificate meets a mutual-TLS one so too)."""
    for words, meaning in _EXPLANATIONS:
        if any(w.lower() in details.lower() for w in words):
            return meaning
    if "socket closed" in details.lower():
        return ("the target closed the connection during set-up: it may require a client certificate "
                "(mutual TLS)") if tls else (
                "the target closed the connection during set-up: it may serve TLS (give its CA)")
    return None
