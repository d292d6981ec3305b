"""What a port speaks, asked when gRPC can only say "socket closed" during set-up.

gRPC reports a connection the target closed during set-up with the same words whatever the cause:
a TLS client at a plain-text port, a plain-text client at a TLS port, a mutual-TLS target refusing
a client without a certificate, or an agent that died mid-handshake. One TLS handshake of our own,
certificate not checked (it only asks what the port speaks), tells them apart, so the collector's
reason can say what happened instead of what might have.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Literal

Speaks = Literal["tls", "mutual-tls", "plain"]


async def probe(host: str, port: int, timeout: float = 2.0) -> Speaks | None:
    """``tls``, ``mutual-tls`` (it wants a client certificate), ``plain`` (it closed or answered
    a TLS ClientHello with something that is not TLS), or None (no answer: refused, timed out)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout)
    except ssl.SSLError as exc:
        return "mutual-tls" if "CERTIFICATE_REQUIRED" in str(exc).upper() else "plain"
    except (ConnectionResetError, asyncio.IncompleteReadError, EOFError, BrokenPipeError):
        return "plain"
    except (OSError, TimeoutError):
        return None
    try:  # TLS 1.3: a server that wants a certificate says so after the handshake
        await asyncio.wait_for(reader.read(1), 0.3)
    except ssl.SSLError as exc:
        if "CERTIFICATE_REQUIRED" in str(exc).upper():
            return "mutual-tls"
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 0.5)
    return "tls"
