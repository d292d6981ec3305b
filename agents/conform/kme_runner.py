"""The conformance kit's ETSI GS QKD 014 side: HTTPS with an SAE's client certificate (aiohttp),
one session per SAE, and the step table the key delivery checks name.

The kit acts as one SAE, the master (`--cert`/`--key`, its SAE ID the certificate's common name),
and asks keys for a slave (`--slave`, default the same SAE: a self-paired SAE, which a KME serves
from its own stores). dec_keys is the slave's call at the slave's KME, so the kit needs the
slave's certificate for it (`--slave-cert`/`--slave-key`, `--slave-kme`, `--slave-ca`; the
master's own when self-paired). Evidence is each request line with its body and the HTTP answer."""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.x509.oid import NameOID
from qstrata.bindings.wire.tls import client_ssl_context

from .model import Check, Evidence, Outcome, Steps
from .netconf_runner import clip

API = "/api/v1/keys"


class KmeUnavailable(Exception):
    """The KME cannot be reached, refuses the SAE's certificate, or the files cannot be read."""


@dataclass(frozen=True)
class SaeAccess:
    """How one SAE calls its KME: the KME's base URL, the SAE's client certificate and key (the
    certificate's common name is the SAE ID) and the CA of the KME's server certificate. For the
    slave, a None is the master's (its KME, its CA; its certificate when it is the master)."""

    url: str | None = None
    cert: str | None = None
    key: str | None = None
    ca: str | None = None


@dataclass(frozen=True)
class KmeEndpoint:
    master: SaeAccess
    """Every field given."""
    slave: str | None = None
    """The slave SAE ID (None: the master itself, self-paired)."""
    slave_access: SaeAccess = SaeAccess()
    timeout: float = 15.0

    @property
    def url(self) -> str:
        """The master's KME."""
        return str(self.master.url)


@dataclass
class Answer:
    """One HTTP exchange: status (0: no HTTP answer, `error` says why) and the JSON body."""

    status: int
    body: Any = None
    text: str = ""
    error: str = ""


def sae_id(cert_path: str) -> str:
    """The SAE ID a KME reads from a client certificate: its subject's common name."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise KmeUnavailable(f"cannot read the certificate {cert_path}: {exc}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise KmeUnavailable(f"{cert_path} has no common name: a KME reads the SAE ID from it")
    return str(names[0].value)


def _tls(ca: str, cert: str | None, key: str | None) -> ssl.SSLContext:
    try:
        context = client_ssl_context(ca, cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise KmeUnavailable(f"cannot use {cert or ca} (key {key}, CA {ca}): {exc}") from None
    return context


@dataclass
class KmeContext:
    endpoint: KmeEndpoint
    http: aiohttp.ClientSession
    master: str
    slave: str
    tls: dict[str, ssl.SSLContext]
    """"master", "slave" and "none" (no client certificate)."""
    status: dict[str, Any]
    """The Status object of the pair, read once: the limits the checks ask within."""

    @classmethod
    async def open(cls, ep: KmeEndpoint) -> KmeContext:
        m, s = ep.master, ep.slave_access
        master = sae_id(str(m.cert))
        slave = ep.slave or master
        slave_cert, slave_key = (s.cert, s.key) if s.cert else ((m.cert, m.key) if slave == master else (None, None))
        tls = {"master": _tls(str(m.ca), m.cert, m.key), "none": _tls(str(m.ca), None, None)}
        if slave_cert:
            if sae_id(slave_cert) != slave:
                raise KmeUnavailable(f"{slave_cert} is the certificate of SAE {sae_id(slave_cert)}, not of the "
                                     f"slave {slave}")
            tls["slave"] = _tls(str(s.ca or m.ca), slave_cert, slave_key)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ep.timeout))
        ctx = cls(ep, http, master, slave, tls, {})
        answer = await ctx.call("master", "GET", f"{ctx.slave}/status")
        if answer.status == 0:
            await http.close()
            raise KmeUnavailable(f"KME {ep.url} unreachable as SAE {master}: {answer.error}")
        if 400 <= answer.status < 500:
            # the KME refuses the pair itself: a set-up mistake (an unknown slave, no application
            # between the two), not something to judge the KME by, check after check
            await http.close()
            said = answer.body.get("message") if isinstance(answer.body, dict) else None
            raise KmeUnavailable(f"KME {ep.url} refuses the pair master {master}, slave {slave} (GET {slave}/status: "
                                 f"HTTP {answer.status}{f', {said}' if said else ''}): is {slave} an SAE with "
                                 f"an application (qkd_app) to {master}? --slave SAE_ID names it")
        if answer.status == 200 and isinstance(answer.body, dict):
            ctx.status = answer.body
        return ctx

    def url(self, who: str) -> str:
        base = self.endpoint.slave_access.url if who == "slave" and self.endpoint.slave_access.url else \
            self.endpoint.url
        return base.rstrip("/") + API

    async def call(self, who: str, method: str, path: str, *, json_body: Any = None, raw: bytes | None = None,
                   ev: Evidence | None = None, note: str = "") -> Answer:
        """`method` `API/path` as SAE `who` ("master", "slave", "none"); recorded in `ev`."""
        url = f"{self.url(who)}/{path}"
        headers = {"Content-Type": "application/json"} if json_body is not None or raw is not None else None
        data = raw if raw is not None else (json.dumps(json_body).encode() if json_body is not None else None)
        sent = f"{method} {url} as {self._who(who)}{note}" + (f"\n{clip(data.decode(errors='replace'), 500)}"
                                                              if data else "")
        try:
            async with self.http.request(method, url, data=data, headers=headers, ssl=self.tls[who]) as r:
                text = await r.text(errors="replace")
                try:
                    body = json.loads(text) if text.strip() else None
                except ValueError:
                    body = None
                answer = Answer(r.status, body, text)
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            answer = Answer(0, error=f"{type(exc).__name__}: {exc}".strip())
        if ev is not None:
            ev.add(sent, f"HTTP {answer.status} {clip(answer.text, 1500)}" if answer.status else answer.error)
        return answer

    def _who(self, who: str) -> str:
        return {"master": f"SAE {self.master}", "slave": f"SAE {self.slave}", "none": "no certificate"}[who]

    @property
    def key_size(self) -> int:
        return _int(self.status.get("key_size"), 256)

    async def close(self) -> None:
        await self.http.close()


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


StepFn = Callable[[KmeContext, Check, Evidence], Awaitable[Outcome]]
STEPS: Steps[StepFn] = Steps()
step = STEPS.step


async def run_check(ctx: KmeContext, check: Check, ev: Evidence) -> Outcome:
    return await STEPS.run("ETSI GS QKD 014", ctx, check, ev)
