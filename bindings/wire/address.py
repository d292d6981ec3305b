"""A host and port as URLs and gRPC targets write them: an IPv6 address goes in brackets
(RFC 3986 s3.2.2), or its colons would read as the port's."""

from __future__ import annotations

__all__ = ["host_port", "https_url"]


def host_port(host: str, port: int) -> str:
    """``host:port``, ``[::1]:port`` for an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def https_url(host: str, port: int) -> str:
    """The base URL of an HTTPS server (the KME's, RESTCONF's) listening on host:port."""
    return f"https://{host_port(host, port)}"
