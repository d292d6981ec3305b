"""TLS as both sides use it: the agent's certificate files (made by `qstrata.agents.access.pki`),
the server contexts built from them (gRPC credentials for gNMI, an `ssl` context for the HTTPS
front ends), the client context that trusts an agent's CA and presents a certificate, and what a
client can tell its user about a refused TLS connection."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsFiles", "client_ssl_context", "explain_connect_failure", "server_credentials", "server_ssl_context"]


@dataclass(frozen=True)
class TlsFiles:
    """An agent's CA, its server certificate and key, and (for mutual TLS) a client pair."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path | None = None
    client_key: Path | None = None


def server_ssl_context(tls: TlsFiles, *, client_certificates: bool = True) -> ssl.SSLContext:
    """Server side of TLS over HTTPS (the KME, RESTCONF): the agent's server certificate; with
    `client_certificates` (mutual TLS) clients must present one signed by the agent's CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    context.verify_mode = ssl.CERT_REQUIRED if client_certificates else ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_ssl_context(ca: str | Path, cert: str | Path | None = None, key: str | Path | None = None) -> ssl.SSLContext:
    """Client side: trust the agent's CA and, for mutual TLS, present `cert` (with `key`). Raises
    OSError or ssl.SSLError when a file is missing or unusable."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


def server_credentials(tls: TlsFiles, *, require_client_auth: bool = False):
    """gRPC server credentials (gNMI) from the agent's files."""
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
