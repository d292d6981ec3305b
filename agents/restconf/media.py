"""Media types (RFC 8040 s5.2, RFC 8072 s2.1): which encoding a request's body is in, and which
one its answer is written in. Pure.

Encodings: ``json`` (application/yang-data+json, RFC 7951 exactly), ``xml``
(application/yang-data+xml) and ``plain`` (application/json: the TeraFlowSDN dialect, see
`dialect`). The compatibility rule: a client that names a YANG media type gets strict RFC 8040;
a client that names none (``Accept: */*``, no Accept, ``application/json``) gets plain JSON
with Content-Type application/json. A body's type decides the answer's when Accept does not
(RFC 8040 s5.2: "the same media type as the request's content").
"""

from __future__ import annotations

from typing import Literal

from .errors import RestconfError

Encoding = Literal["json", "xml", "plain"]

YANG_JSON = "application/yang-data+json"
YANG_XML = "application/yang-data+xml"
PLAIN_JSON = "application/json"
PATCH_JSON = "application/yang-patch+json"
PATCH_XML = "application/yang-patch+xml"
EVENT_STREAM = "text/event-stream"

CONTENT_TYPE: dict[str, str] = {"json": YANG_JSON, "xml": YANG_XML, "plain": PLAIN_JSON}
_INPUT: dict[str, Encoding] = {YANG_JSON: "json", YANG_XML: "xml", PLAIN_JSON: "plain", "application/xml": "xml",
                               "text/xml": "xml"}
_OUTPUT: dict[str, Encoding] = {YANG_JSON: "json", YANG_XML: "xml", PLAIN_JSON: "plain", "application/xml": "xml"}
MAX_ACCEPT_ENTRIES = 32


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def body_encoding(content_type: str | None, *, patch: bool = False) -> tuple[Encoding, bool]:
    """(encoding, is a YANG Patch) of a request body; 415 for anything else."""
    media = _media(content_type or "")
    if patch and media in (PATCH_JSON, PATCH_XML):
        return ("json" if media == PATCH_JSON else "xml"), True
    found = _INPUT.get(media)
    if found is None:
        accepted = [YANG_JSON, YANG_XML, PLAIN_JSON] + ([PATCH_JSON, PATCH_XML] if patch else [])
        raise RestconfError("invalid-value", f"the body's media type {media or '(none)'!r} is not one of "
                            f"{', '.join(accepted)}", status=415, error_type="protocol")
    return found, False


def _accept_entries(accept: str) -> list[tuple[float, int, str]]:
    entries = []
    for position, item in enumerate(accept.split(",")[:MAX_ACCEPT_ENTRIES]):
        media, *params = [p.strip() for p in item.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        if media:
            entries.append((q, position, media.lower()))
    return entries


def answer_encoding(accept: str | None, body: Encoding | None = None, *, default: Encoding = "plain") -> Encoding:
    """The encoding of the answer; 406 when nothing acceptable can be produced. A wildcard
    (``*/*``, ``application/*``) or no Accept takes the body's encoding, else `default`."""
    if not accept or not accept.strip():
        return body or default
    best: tuple[float, int, Encoding] | None = None
    for q, _, media in _accept_entries(accept):
        if q <= 0:
            continue
        if media in _OUTPUT:
            choice = _OUTPUT[media]
            rank = (q, 2, choice)
        elif media in ("*/*", "application/*"):
            choice = body or default
            rank = (q, 1, choice)
        else:
            continue
        if best is None or rank[:2] > best[:2]:  # ties: the first listed
            best = rank  # type: ignore[assignment]
    if best is None:
        raise RestconfError("invalid-value", f"none of the media types in Accept ({accept[:200]}) can be produced; "
                            f"this server writes {YANG_JSON}, {YANG_XML} or {PLAIN_JSON}", status=406,
                            error_type="protocol")
    return best[2]


def accepts_event_stream(accept: str | None) -> bool:
    if not accept:
        return True
    return any(q > 0 and media in (EVENT_STREAM, "text/*", "*/*") for q, _, media in _accept_entries(accept))
