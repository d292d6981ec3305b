"""ETSI GS QKD 014 request objects, read strictly: what the query string or the JSON body says, as
the core's arguments, or a `KmeError` (bad-request) naming what is wrong. Pure (no aiohttp)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qstrata.agents.kme.errors import KmeError

MAX_BODY = 1024 * 1024
"""Largest request body read (a Key IDs object of the largest request is a few hundred kB)."""


@dataclass
class KeyRequest:
    number: int | None = None
    size: int | None = None
    additional_slaves: list[str] = field(default_factory=list)
    extension_mandatory: list[Any] = field(default_factory=list)


def _integer(name: str, raw: Any) -> int:
    """A query parameter's text, or a JSON body's number, as an integer."""
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise KmeError("bad-request", f"{name} {raw[:80]!r} is not an integer") from None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise KmeError("bad-request", f"{name} must be a JSON integer, not {json.dumps(raw)[:80]}")
    return raw


def body_json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise KmeError("bad-request", f"the request body is not JSON: {exc}") from None
    except RecursionError:  # arrays or objects nested thousands deep: no ETSI object is
        raise KmeError("bad-request", "the request body is nested too deeply to be an ETSI GS QKD 014 "
                       "object") from None
    if not isinstance(doc, dict):
        raise KmeError("bad-request", f"the request body is a JSON {type(doc).__name__}, not an object")
    return doc


def key_request_from_query(query: Mapping[str, str]) -> KeyRequest:
    """`query` is aiohttp's multi-valued mapping (or a plain one): a parameter given twice is
    refused, since which of the two counts would be a guess."""
    request = KeyRequest()
    getall = getattr(query, "getall", None)
    for name in ("number", "size"):
        if name in query:
            if getall is not None and len(values := getall(name)) > 1:
                raise KmeError("bad-request", f"{name} is given {len(values)} times in the query; give it once")
            setattr(request, name, _integer(name, query[name]))
    return request


def key_request_from_body(doc: dict[str, Any]) -> KeyRequest:
    request = KeyRequest()
    for name in ("number", "size"):
        value = doc.get(name)
        if value is not None:
            if isinstance(value, str):
                raise KmeError("bad-request", f"{name} must be a JSON integer, not the string {value[:80]!r}")
            setattr(request, name, _integer(name, value))
    slaves = doc.get("additional_slave_SAE_IDs")
    if slaves is not None:
        if not isinstance(slaves, list) or not all(isinstance(s, str) and s for s in slaves):
            raise KmeError("bad-request", "additional_slave_SAE_IDs must be a list of SAE IDs (strings)")
        request.additional_slaves = list(slaves)
    for name in ("extension_mandatory", "extension_optional"):
        value = doc.get(name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(e, dict) for e in value)):
            raise KmeError("bad-request", f"{name} must be a list of objects")
    request.extension_mandatory = list(doc.get("extension_mandatory") or [])
    return request


def key_ids_from_body(doc: dict[str, Any]) -> list[str]:
    entries = doc.get("key_IDs")
    if not isinstance(entries, list) or not entries:
        raise KmeError("bad-request", "the Key IDs object needs key_IDs: a list of {\"key_ID\": UUID}")
    ids = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key_ID"), str):
            raise KmeError("bad-request", "each key_IDs entry is an object with a key_ID string")
        ids.append(entry["key_ID"])
    return ids
