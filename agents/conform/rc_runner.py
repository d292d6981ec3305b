"""The conformance kit's RESTCONF side (RFC 8040 over HTTPS, aiohttp): the endpoint, one client
session per run, the request templates checks are written in, the pure judge of an answer
(`evaluate`) and the step table the RESTCONF checks name.

A request is written as a check's data, the way it goes on the wire::

    PUT $entry1
    Content-Type: application/yang-data+json

    {"etsi-qkd-sdn-node:qkd_link": [$E1]}

`$names` are filled from the profile's RESTCONF values (`RcProfile.values`: the data root found
through host-meta, the test entries' paths and JSON bodies) and from the answers before it in the
same check (`$etag`, `$last_modified`, `$location`), so an ETag round trip is data too."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from string import Template
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from lxml import etree
from qstrata.bindings.wire.auth import basic_authorization
from qstrata.bindings.wire.tls import client_ssl_context
from yarl import URL

from .model import Check, Evidence, Outcome, RcExpect, Steps, Verdict
from .netconf_runner import clip

RESTCONF_NS = "urn:ietf:params:xml:ns:yang:ietf-restconf"
JSON_MEDIA = "application/yang-data+json"
XML_MEDIA = "application/yang-data+xml"
ERROR_TYPES = ("transport", "rpc", "protocol", "application")
STATUS_OF_TAG: dict[str, tuple[int, ...]] = {
    "in-use": (409,), "invalid-value": (400, 404, 406), "too-big": (413,), "missing-attribute": (400,),
    "bad-attribute": (400,), "unknown-attribute": (400,), "bad-element": (400,), "unknown-element": (400,),
    "unknown-namespace": (400,), "access-denied": (401, 403), "lock-denied": (409,), "resource-denied": (409,),
    "rollback-failed": (500,), "data-exists": (409,), "data-missing": (409,), "operation-not-supported": (405, 501),
    "operation-failed": (412, 500), "partial-operation": (500,), "malformed-message": (400,),
}
"""RFC 8040 section 7: the HTTP status each error-tag is sent with (a YANG Patch's per-edit
errors aside, whose status is the whole patch's)."""


class RcUnavailable(Exception):
    """The RESTCONF server cannot be reached, refuses the credentials, or the CA cannot be read."""


@dataclass(frozen=True)
class RcEndpoint:
    url: str
    """https://HOST:PORT (the root is discovered through /.well-known/host-meta, RFC 8040 3.1)."""
    user: str
    password: str
    ca: str | None = None
    """CA of the server's certificate; None: not verified (--restconf-insecure; the report says so)."""
    timeout: float = 15.0


@dataclass
class Answer:
    """One HTTP exchange: status (0: no HTTP answer, `error` says why), headers, body text."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    error: str = ""
    untrusted: bool = False
    """No answer because the server's certificate does not verify against the CA given."""

    @property
    def media(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def line(self) -> str:
        head = "".join(f"\n{k}: {v}" for k, v in self.headers)
        return f"{self.method} {self.target}{head}" + (f"\n\n{clip(self.body, 600)}" if self.body else "")


def parse_request(text: str) -> Request:
    """A request as written in a check: the request line, header lines, a blank line, the body."""
    head, _, body = text.partition("\n\n")
    lines = head.strip("\n").split("\n")
    method, _, target = lines[0].strip().partition(" ")
    headers = tuple((k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:] if h.strip()))
    return Request(method.upper(), target.strip(), headers, body if body else None)


# ------------------------------------------------------------------ the judge (pure)


_SEGMENT = re.compile(r"^([^\[=]+)(?:\[([^=\]]+)=([^\]]*)\])?(?:=(.*))?$")


def _scalar(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if value == [None]:
        return "[null]"
    return str(value)


def json_has(body: Any, path: str) -> bool:
    """Is the ``a/b[k=v]/c=value`` path in the JSON body? Lists are searched entry by entry."""
    nodes = [body]
    for segment in path.split("/"):
        m = _SEGMENT.match(segment)
        if not m:
            return False
        name, key, key_value, value = m.groups()
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, dict) and name in node:
                v = node[name]
                found.extend(v if isinstance(v, list) and v != [None] else [v])
        if key is not None:
            found = [f for f in found if isinstance(f, dict) and key in f and _scalar(f[key]) == key_value]
        if value is not None:
            found = [f for f in found if _scalar(f) == value]
        if not found:
            return False
        nodes = found
    return True


def xml_has(root: Any, path: str) -> bool:
    """The same path on an XML body, by local names (module prefixes dropped)."""
    nodes = [root]
    for i, segment in enumerate(path.split("/")):
        m = _SEGMENT.match(segment)
        if not m:
            return False
        name, key, key_value, value = m.groups()
        local = name.split(":")[-1]
        if i == 0:
            found = [n for n in nodes if etree.QName(n).localname == local]
        else:
            found = [c for n in nodes for c in n if isinstance(c.tag, str) and etree.QName(c).localname == local]
        if key is not None:
            found = [f for f in found if any(isinstance(c.tag, str) and etree.QName(c).localname == key
                                             and (c.text or "").strip() == key_value for c in f)]
        if value is not None:
            found = [f for f in found if (f.text or "").strip().split(":")[-1] == value.split(":")[-1]]
        if not found:
            return False
        nodes = found
    return True


def restconf_errors(answer: Answer) -> list[dict[str, str]] | None:
    """The errors of an ``ietf-restconf:errors`` body (JSON or XML), or None if it is not one."""
    if answer.media.endswith("json"):
        doc = answer.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("ietf-restconf:errors"), dict):
            return None
        errors = doc["ietf-restconf:errors"].get("error")
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            return None
        return [{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in e.items()} for e in errors]
    if answer.media.endswith("xml"):
        try:
            root = etree.fromstring(answer.text.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return None
        if etree.QName(root).localname != "errors" or etree.QName(root).namespace != RESTCONF_NS:
            return None
        return [{etree.QName(c).localname: (c.text or "").strip() for c in e if isinstance(c.tag, str)}
                for e in root if isinstance(e.tag, str) and etree.QName(e).localname == "error"]
    return None


def patch_errors(answer: Answer) -> list[dict[str, Any]] | None:
    """Every error of a JSON ``ietf-yang-patch:yang-patch-status`` (global and per edit), or None."""
    doc = answer.json()
    status = doc.get("ietf-yang-patch:yang-patch-status") if isinstance(doc, dict) else None
    if not isinstance(status, dict):
        return None
    found: list[dict[str, Any]] = []

    def collect(errors: Any) -> None:
        if isinstance(errors, dict) and isinstance(errors.get("error"), list):
            found.extend(e for e in errors["error"] if isinstance(e, dict))

    collect(status.get("errors"))
    edits = (status.get("edit-status") or {}).get("edit") if isinstance(status.get("edit-status"), dict) else None
    for edit in edits if isinstance(edits, list) else []:
        if isinstance(edit, dict):
            collect(edit.get("errors"))
    return found


def evaluate(expect: RcExpect, answer: Answer, values: dict[str, str] | None = None) -> Outcome:
    """Does `answer` meet `expect`? (pure)"""
    values = values or {}
    if answer.status == 0:
        return Outcome(Verdict.ERROR, f"no HTTP answer: {answer.error}")
    if answer.status not in expect.codes:
        why = f"HTTP {answer.status}, expected {' or '.join(map(str, expect.codes))}"
        errors = restconf_errors(answer)
        return Outcome(Verdict.FAIL, why + (f" ({_describe(errors)})" if errors else f": {clip(answer.text, 200)}"))
    if expect.media and answer.media != expect.media:
        return Outcome(Verdict.FAIL, f"Content-Type {answer.media or 'none'}, expected {expect.media}")
    missing = [h for h in expect.headers if h.lower() not in answer.headers]
    if missing:
        return Outcome(Verdict.FAIL, f"no {', '.join(missing)} header")
    if expect.no_body and answer.text:
        return Outcome(Verdict.FAIL, f"a body where none may be: {clip(answer.text, 200)}")
    if answer.status >= 400 and expect.yang_patch:
        errors = patch_errors(answer)
        if errors is None:
            return Outcome(Verdict.FAIL, f"error body is not ietf-yang-patch:yang-patch-status (RFC 8072 2.3): "
                                         f"{clip(answer.text, 200)}")
        if expect.tags and not any(e.get("error-tag") in expect.tags for e in errors):
            return Outcome(Verdict.FAIL, f"error-tag {', '.join(str(e.get('error-tag')) for e in errors)}, "
                                         f"expected {' or '.join(expect.tags)}")
    elif answer.status >= 400:
        errors = restconf_errors(answer)
        if errors is None or not errors:
            return Outcome(Verdict.FAIL, f"error body is not ietf-restconf:errors (RFC 8040 7.1): "
                                         f"{answer.media or 'no media type'} {clip(answer.text, 200)}")
        for e in errors:
            if e.get("error-type") not in ERROR_TYPES or not e.get("error-tag"):
                return Outcome(Verdict.FAIL, f"an error without a valid error-type and error-tag: {e}")
            allowed = STATUS_OF_TAG.get(e["error-tag"])
            if allowed is None:
                return Outcome(Verdict.FAIL, f"error-tag {e['error-tag']!r} is none of RFC 8040 section 7's")
            if answer.status not in allowed and e["error-tag"] not in ("invalid-value", "access-denied"):
                return Outcome(Verdict.FAIL, f"error-tag {e['error-tag']} sent with HTTP {answer.status}; RFC 8040 "
                                             f"section 7 gives {' or '.join(map(str, allowed))}")
        if expect.tags and not any(e["error-tag"] in expect.tags for e in errors):
            return Outcome(Verdict.FAIL, f"error-tag {', '.join(e['error-tag'] for e in errors)}, expected "
                                         f"{' or '.join(expect.tags)}")
        if expect.error_path:
            want = Template(expect.error_path).safe_substitute(values)
            if not any(_path_ends(e.get("error-path", ""), want) for e in errors):
                return Outcome(Verdict.FAIL, f"no error-path ending in {want}: {_describe(errors)}")
    if expect.present or expect.absent:
        has = _body_matcher(answer)
        if has is None:
            return Outcome(Verdict.FAIL, f"the body is neither JSON nor XML: {clip(answer.text, 200)}")
        for p in expect.present:
            p = Template(p).safe_substitute(values)
            if not has(p):
                return Outcome(Verdict.FAIL, f"no {p} in the body: {clip(answer.text, 400)}")
        for p in expect.absent:
            p = Template(p).safe_substitute(values)
            if has(p):
                return Outcome(Verdict.FAIL, f"{p} in the body, where it must not be")
    return Outcome(Verdict.PASS)


def _body_matcher(answer: Answer) -> Callable[[str], bool] | None:
    if answer.media.endswith("xml"):
        try:
            root = etree.fromstring(answer.text.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return None
        return lambda p: xml_has(root, p)
    body = answer.json()
    if body is None:
        return None
    return lambda p: json_has(body, p)


def _path_ends(error_path: str, want: str) -> bool:
    """error-path is an instance-identifier (RFC 7951 6.11 in JSON, prefixed XPath in XML): compare
    its last node names, prefixes and predicates ignored."""
    names = [s.split(":")[-1] for s in re.sub(r"\[[^\]]*\]", "", error_path).strip("/").split("/") if s]
    wanted = [s.split(":")[-1] for s in want.strip("/").split("/") if s]
    return names[-len(wanted):] == wanted if wanted else True


def _describe(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e.get('error-tag')} {e.get('error-path', '')} {e.get('error-message', '')}".strip()
                     for e in errors)


# ------------------------------------------------------------------ the client


def _tls(ca: str | None) -> ssl.SSLContext | bool:
    if ca is None:
        return False
    try:
        return client_ssl_context(ca)
    except (OSError, ssl.SSLError) as exc:
        raise RcUnavailable(f"cannot use the CA {ca}: {exc}") from None


@dataclass
class RcContext:
    """What every RESTCONF check of one run shares: the endpoint, one aiohttp session, the root
    found through host-meta and the profile's values."""

    endpoint: RcEndpoint
    http: aiohttp.ClientSession
    tls: ssl.SSLContext | bool
    values: dict[str, str]
    root: str = "/restconf"
    saved: list[tuple[str, str]] = field(default_factory=list)
    """The test entries' own configuration before the run (target, RFC 7951 JSON): a switch's
    test entries are its real ports."""

    @classmethod
    async def open(cls, ep: RcEndpoint) -> RcContext:
        parts = urlsplit(ep.url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RcUnavailable(f"--restconf {ep.url}: expected https://HOST:PORT")
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ep.timeout),
                                     headers={"Authorization": basic_authorization(ep.user, ep.password)})
        ctx = cls(ep, http, _tls(ep.ca), {})
        meta = await ctx.send(Request("GET", "/.well-known/host-meta"))
        if meta.status == 0:
            await http.close()
            raise RcUnavailable(f"RESTCONF {ep.url}: {meta.error}" if meta.untrusted
                                else f"RESTCONF {ep.url} unreachable: {meta.error}")
        root = host_meta_root(meta.text) if meta.status == 200 else None
        ctx.root = root or "/restconf"
        probe = await ctx.send(Request("GET", ctx.root, (("Accept", JSON_MEDIA),)))
        if probe.status in (401, 403):
            await http.close()
            raise RcUnavailable(f"RESTCONF {ep.url} refused user {ep.user!r} (HTTP {probe.status})")
        ctx.values |= {"restconf": ctx.root, "data": ctx.root + "/data", "operations": ctx.root + "/operations"}
        return ctx

    def fill(self, template: str, extra: dict[str, str] | None = None) -> str:
        return Template(template).substitute(self.values | (extra or {}))

    def url(self, target: str) -> URL:
        """The target as written in the check, byte for byte: a URL library left alone turns
        ``%2C`` into ``,`` and the request into another one (RFC 8040 3.5.3.1)."""
        return URL(target if target.startswith(("http://", "https://")) else urljoin(self.endpoint.url, target),
                   encoded=True)

    async def send(self, req: Request, *, auth: str | bool = True) -> Answer:
        """One request with the run's credentials; `auth` False sends none, a string (an
        Authorization header) others."""
        session = self.http if auth is True else aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.endpoint.timeout),
            headers={"Authorization": auth} if isinstance(auth, str) else None)
        try:
            async with session.request(req.method, self.url(req.target), headers=dict(req.headers),
                                       data=req.body.encode() if req.body is not None else None,
                                       ssl=self.tls, allow_redirects=False) as r:
                text = await r.text(errors="replace")
                return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, text)
        except aiohttp.ClientConnectorCertificateError as exc:
            return Answer(0, error=f"its certificate does not verify against the CA {self.endpoint.ca}: "
                                   f"{getattr(exc.certificate_error, 'verify_message', '') or exc.certificate_error}",
                          untrusted=True)
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            return Answer(0, error=f"{type(exc).__name__}: {exc}".strip())
        finally:
            if session is not self.http:
                await session.close()

    async def exchange(self, template: str, ev: Evidence, carried: dict[str, str], **kw: Any) -> Answer:
        """Fill, send and record one request; keep the headers later requests may use."""
        req = parse_request(self.fill(template, carried))
        answer = await self.send(req, **kw)
        ev.add(req.line(), render(answer))
        for header, name in (("etag", "etag"), ("last-modified", "last_modified"), ("location", "location")):
            if header in answer.headers:
                carried[name] = answer.headers[header]
        return answer

    async def close(self) -> None:
        await self.http.close()


def render(answer: Answer) -> str:
    if answer.status == 0:
        return answer.error
    shown = ("content-type", "etag", "last-modified", "location", "allow", "accept-patch", "www-authenticate")
    head = "".join(f"\n{h}: {answer.headers[h]}" for h in shown if h in answer.headers)
    return f"HTTP {answer.status}{head}" + (f"\n\n{clip(answer.text, 1500)}" if answer.text else "")


def host_meta_root(xrd: str) -> str | None:
    """The RESTCONF root a host-meta document names (RFC 8040 3.1: Link rel="restconf")."""
    try:
        root = etree.fromstring(xrd.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    for link in root.iter():
        if isinstance(link.tag, str) and etree.QName(link).localname == "Link" and link.get("rel") == "restconf":
            return (link.get("href") or "").rstrip("/") or None
    return None


# ------------------------------------------------------------------ steps

StepFn = Callable[[RcContext, Check, Evidence], Awaitable[Outcome]]
STEPS: Steps[StepFn] = Steps()
step = STEPS.step


async def run_check(ctx: RcContext, check: Check, ev: Evidence) -> Outcome:
    name = check.step or "exchange"
    if name not in STEPS:
        return Outcome(Verdict.ERROR, f"no RESTCONF step {name!r}")
    if check.param("needs") and not ctx.values.get(check.param("needs")):
        return Outcome(Verdict.NOT_APPLICABLE, f"the profile has no {check.param('needs')}")
    return await STEPS[name](ctx, check, ev)


async def _setup(ctx: RcContext, check: Check, ev: Evidence, carried: dict[str, str]) -> Outcome | None:
    for template in check.setup:
        answer = await ctx.exchange(template, ev, carried)
        if not 200 <= answer.status < 300:
            return Outcome(Verdict.ERROR, f"set-up {template.splitlines()[0]} answered "
                                          f"{answer.status or answer.error}")
    return None


async def _cleanup(ctx: RcContext, check: Check, ev: Evidence, carried: dict[str, str]) -> None:
    for template in check.cleanup:
        try:
            await ctx.exchange(template, ev, carried)
        except KeyError:
            pass


@step("exchange")
async def exchange(ctx: RcContext, check: Check, ev: Evidence) -> Outcome:
    """Set-up, the request, its expectation, each follow-up with its own, clean-up whatever happened."""
    carried: dict[str, str] = {"big": "a" * check.param("big")} if check.param("big") else {}
    try:
        if problem := await _setup(ctx, check, ev, carried):
            return problem
        answer = await ctx.exchange(check.send, ev, carried)
        outcome = evaluate(check.expect, answer, ctx.values | carried)
        if outcome.verdict is not Verdict.PASS:
            return outcome
        for header, tokens in check.param("header_has", ()):
            listed = {t.strip().lower() for t in answer.headers.get(header, "").split(",")}
            if missing := [t for t in tokens if t.lower() not in listed]:
                return Outcome(Verdict.FAIL, f"{header} without {', '.join(missing)}: "
                                             f"{answer.headers.get(header, '(none)')}")
        for template, expect in check.then:
            answer = await ctx.exchange(template, ev, carried)
            outcome = evaluate(expect, answer, ctx.values | carried)
            if outcome.verdict is not Verdict.PASS:
                return Outcome(outcome.verdict, f"then {template.splitlines()[0]}: {outcome.reason}")
        return Outcome(Verdict.PASS)
    finally:
        await _cleanup(ctx, check, ev, carried)


@step("host_meta")
async def host_meta(ctx: RcContext, check: Check, ev: Evidence) -> Outcome:
    """RFC 8040 3.1: host-meta is an XRD naming the root with Link rel="restconf"."""
    answer = await ctx.exchange(check.send, ev, {})
    outcome = evaluate(check.expect, answer)
    if outcome.verdict is not Verdict.PASS:
        return outcome
    root = host_meta_root(answer.text)
    if not root:
        return Outcome(Verdict.FAIL, "no <Link rel=\"restconf\" href=...> in the XRD")
    ev.note(f"RESTCONF root: {root}")
    return Outcome(Verdict.PASS)


@step("unauthenticated")
async def unauthenticated(ctx: RcContext, check: Check, ev: Evidence) -> Outcome:
    """The request without credentials, or (param `password`) with a wrong password: refused,
    while the same request with the run's credentials succeeds."""
    wrong = check.param("password")
    auth: str | bool = basic_authorization(ctx.endpoint.user, wrong) if wrong else False
    req = parse_request(ctx.fill(check.send))
    answer = await ctx.send(req, auth=auth)
    ev.add(req.line() + (" (wrong password)" if wrong else " (no credentials)"), render(answer))
    outcome = evaluate(check.expect, answer)
    if outcome.verdict is not Verdict.PASS:
        return outcome
    control = await ctx.send(req)
    ev.add(req.line() + " (the run's credentials)", render(control))
    if control.status != 200:
        return Outcome(Verdict.ERROR, f"the control request with the run's credentials answered {control.status}")
    return Outcome(Verdict.PASS)


@step("stream")
async def stream(ctx: RcContext, check: Check, ev: Evidence) -> Outcome:
    """RFC 8040 6.3/6.4: the stream's location from ietf-restconf-monitoring, opened as
    text/event-stream; an edit made after it is open must arrive as the `event` param names."""
    want = check.param("event", "netconf-config-change")
    mon = await ctx.exchange("GET $data/ietf-restconf-monitoring:restconf-state/streams\nAccept: " + JSON_MEDIA,
                             ev, {})
    doc = mon.json() if mon.status == 200 else None
    location = _stream_location(doc, check.param("stream", "NETCONF"))
    if not location:
        return Outcome(Verdict.FAIL, "no location of the NETCONF stream in restconf-state/streams (RFC 8040 9.2)")
    carried: dict[str, str] = {}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=10)
    try:
        async with ctx.http.get(ctx.url(location), headers={"Accept": "text/event-stream"}, ssl=ctx.tls,
                                timeout=timeout) as r:
            ev.add(f"GET {location}\nAccept: text/event-stream", f"HTTP {r.status}\ncontent-type: "
                                                                f"{r.headers.get('Content-Type', '')}")
            if r.status != 200 or not r.headers.get("Content-Type", "").startswith("text/event-stream"):
                return Outcome(Verdict.FAIL, f"HTTP {r.status} {r.headers.get('Content-Type', '')}, expected 200 "
                                             "text/event-stream")
            for template in check.setup:  # the edit that must be announced
                answer = await ctx.exchange(template, ev, carried)
                if not 200 <= answer.status < 300:
                    return Outcome(Verdict.ERROR, f"the edit answered {answer.status or answer.error}")
            seen = ""
            try:
                async with asyncio.timeout(check.param("wait", 10.0)):
                    async for line in r.content:
                        text = line.decode(errors="replace")
                        seen += text
                        if text.startswith("data:") and want in text:
                            ev.add("(events)", clip(seen, 1500))
                            return Outcome(Verdict.PASS)
            except TimeoutError:
                pass
            ev.add("(events)", clip(seen, 1500) or "(none)")
            return Outcome(Verdict.FAIL, f"no {want} event within {check.param('wait', 10.0):g} s of the edit")
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(Verdict.ERROR, f"{type(exc).__name__}: {exc}")
    finally:
        await _cleanup(ctx, check, ev, carried)


def _stream_location(doc: Any, name: str) -> str | None:
    if not isinstance(doc, dict):
        return None
    streams = doc.get("ietf-restconf-monitoring:streams", {})
    for s in streams.get("stream", []) if isinstance(streams, dict) else []:
        if isinstance(s, dict) and s.get("name") == name:
            access = s.get("access") or []
            json_first = sorted(access, key=lambda a: a.get("encoding") != "json") if isinstance(access, list) else []
            for a in json_first:
                if isinstance(a, dict) and a.get("location"):
                    return str(a["location"])
    return None
