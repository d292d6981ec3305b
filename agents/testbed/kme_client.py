"""An ETSI GS QKD 014 V1.1.1 client with mutual TLS: how `qstrata up`'s built-in application and
`qstrata keys` call a KME, as any application would (aiohttp, the SAE's client certificate).

The SAE is who its certificate says; the client only chooses which certificate to present. A
refusal is the KME's Error object as a `KmeRefusal` (HTTP status, `message`, `details`); a KME
that cannot be reached (refused connection, TLS handshake, timeout) is a `KmeRefusal` with status
0 and the reason, so callers have one kind of failure to report.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from qstrata.bindings.wire.tls import client_ssl_context

API = "/api/v1/keys"
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_NEXT_KME_DOWN = re.compile(r"KME \S+ is unreachable")


@dataclass(frozen=True)
class SaeIdentity:
    """An SAE and the KME it calls."""

    sae_id: str
    cert: Path
    key: Path
    ca: Path
    """The CA that signed the KME's server certificate (and the SAE's)."""
    url: str
    """The KME's base URL (`https://HOST:PORT`)."""


class KmeRefusal(Exception):
    """The KME refused (`status` 400, 401, 503 ... and its Error object), or could not be asked
    (`status` 0)."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    @property
    def reason(self) -> str:
        """What kind of refusal, in words a person reads in a summary and the same for every
        refusal of that kind: the message up to its first colon without the IDs in it, and the
        HTTP status ("not enough key (HTTP 503)", "rate limited (HTTP 503)", "the next KME on the
        route is unreachable (HTTP 503)", "KME unreachable (no HTTP answer)")."""
        if not self.status:
            return "KME did not answer in time" if "did not answer" in self.message else "KME unreachable (no HTTP answer)"
        head = self.message.split(":", 1)[0].strip()
        if _NEXT_KME_DOWN.fullmatch(head):
            head = "the next KME on the route is unreachable"
        head = " ".join(_UUID.sub("", head).split())[:60] or "no reason given"
        return f"{head} (HTTP {self.status})"

    def __str__(self) -> str:
        return f"{self.status} {self.message}" if self.status else self.message


def tls_context(sae: SaeIdentity) -> ssl.SSLContext:
    """Client side of mutual TLS: trust the KME's CA, present the SAE's certificate."""
    return client_ssl_context(sae.ca, sae.cert, sae.key)


class KmeClient:
    """One SAE's connection to its KME; keeps the TLS connection open between calls."""

    def __init__(self, sae: SaeIdentity, timeout: float = 10.0) -> None:
        self.sae = sae
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls_context(self.sae), limit=4),
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: dict[str, Any] | None = None) -> Any:
        url = f"{self.sae.url.rstrip('/')}{API}/{path}"
        try:
            async with self._client().request(method, url, params=params, json=body) as answer:
                text = await answer.text()
                status = answer.status
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            raise KmeRefusal(0, f"cannot reach the KME at {self.sae.url}: {_why(exc)}") from None
        except TimeoutError:
            raise KmeRefusal(0, f"the KME at {self.sae.url} did not answer within {self.timeout:g} s") from None
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if status != 200:
            if isinstance(doc, dict) and isinstance(doc.get("message"), str):
                raise KmeRefusal(status, doc["message"], doc.get("details"))
            raise KmeRefusal(status, text.strip()[:200] or f"HTTP {status} without a body")
        if not isinstance(doc, dict):
            raise KmeRefusal(status, f"the KME answered 200 with no JSON object: {text[:80]!r}")
        return doc

    async def status(self, slave: str) -> dict[str, Any]:
        """The Status object of the pair (this SAE as master, `slave`)."""
        return await self._call("GET", f"{slave}/status")

    async def enc_keys(self, slave: str, number: int | None = None, size: int | None = None,
                       additional_slaves: tuple[str, ...] = ()) -> list[tuple[str, bytes]]:
        """New keys for this SAE (master) and `slave`: (key_ID, key) pairs."""
        if additional_slaves:
            body: dict[str, Any] = {"additional_slave_SAE_IDs": list(additional_slaves)}
            if number is not None:
                body["number"] = number
            if size is not None:
                body["size"] = size
            return _keys(await self._call("POST", f"{slave}/enc_keys", body=body))
        params = {k: str(v) for k, v in (("number", number), ("size", size)) if v is not None}
        return _keys(await self._call("GET", f"{slave}/enc_keys", params=params))

    async def dec_keys(self, master: str, key_ids: list[str]) -> list[tuple[str, bytes]]:
        """The keys under `key_ids` that `master` got for this SAE (slave)."""
        body = {"key_IDs": [{"key_ID": key_id} for key_id in key_ids]}
        return _keys(await self._call("POST", f"{master}/dec_keys", body=body))


def _keys(container: dict[str, Any]) -> list[tuple[str, bytes]]:
    try:
        return [(str(k["key_ID"]), base64.b64decode(k["key"], validate=True)) for k in container["keys"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise KmeRefusal(200, f"the KME answered a key container that is not one: {exc}") from None


def _why(exc: BaseException) -> str:
    """The innermost reason of a connection failure, in one line."""
    cause = getattr(exc, "os_error", None) or getattr(exc, "certificate_error", None) or exc
    text = str(getattr(cause, "strerror", None) or getattr(cause, "reason", None) or cause)
    return " ".join(text.split()) or type(exc).__name__
