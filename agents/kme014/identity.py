"""Who is calling: the SAE ID is the common name of the client certificate the TLS handshake
verified against the agent's CA. The request's path and body never identify the caller."""

from __future__ import annotations

from typing import Any


def common_name(peercert: Any) -> str | None:
    """The subject's common name of a certificate as `ssl.SSLSocket.getpeercert()` returns it."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject") or ():
        for attribute in rdn:
            if len(attribute) == 2 and attribute[0] == "commonName":
                return str(attribute[1])
    return None
