"""``ietf-restconf-monitoring:restconf-state`` (RFC 8040 s9): the capabilities and the event
streams of this server, and GET of any resource below it (RFC 8040 s4.3: the answer is the
target resource, not the whole container). Pure.

The module is not in the agent's schema (it describes the server, not the device), so its
small tree is built here as data and walked by path segment the way `resource` walks the schema.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from .errors import RestconfError, not_found
from .media import Encoding

MODULE = "ietf-restconf-monitoring"
NAMESPACE = "urn:ietf:params:xml:ns:yang:ietf-restconf-monitoring"
ROOT = "restconf-state"
LIST_KEYS = {"stream": "name", "access": "encoding"}
"""The lists of the module and their keys (capability is a leaf-list)."""


def state(capabilities: tuple[str, ...], stream: str, description: str, created: str,
          locations: dict[str, str]) -> dict[str, Any]:
    """The restconf-state container as RFC 7951 members (without the module prefix)."""
    access = [{"encoding": enc, "location": url} for enc, url in locations.items()]
    return {"capabilities": {"capability": list(capabilities)},
            "streams": {"stream": [{"name": stream, "description": description, "replay-support": True,
                                    "replay-log-creation-time": created, "access": access}]}}


def select(tree: dict[str, Any], raw_segments: list[str]) -> tuple[str, Any, bool]:
    """(member name, value, is a list entry) of the resource at `raw_segments` (percent-encoded,
    below ``restconf-state``). 404 when nothing is there."""
    name, value, is_entry = ROOT, tree, False
    for raw in raw_segments:
        segment, eq, key = raw.partition("=")
        segment = unquote(segment).removeprefix(f"{MODULE}:")
        if not isinstance(value, dict) or segment not in value:
            raise not_found(f"{MODULE}:{ROOT} has no {'/'.join(raw_segments)}")
        name, value, is_entry = segment, value[segment], False
        if not isinstance(value, list):
            if eq:
                raise not_found(f"{segment} is not a list: it takes no key")
            continue
        field = LIST_KEYS.get(segment)
        if not eq:
            if field:
                raise RestconfError("missing-attribute", f"list {segment} needs its key ({field}) as "
                                    f"{segment}=value", error_type="protocol", info={"bad-element": segment})
            continue  # the capability leaf-list as a whole
        wanted = unquote(key)
        found = [e for e in value if (e.get(field) if field else e) == wanted]
        if not found:
            raise not_found(f"{MODULE}:{ROOT} has no {segment} {wanted!r}")
        value, is_entry = found[0], True
    return name, value, is_entry


def encode(name: str, value: Any, encoding: Encoding, is_entry: bool) -> bytes:
    """The resource as a RESTCONF answer: JSON names the module on the top member (RFC 7951 s4;
    not in the plain dialect), XML puts it in the module's namespace."""
    if encoding == "xml":
        return _xml(name, value, top=True).encode()
    shown = name if encoding == "plain" else f"{MODULE}:{name}"
    return json.dumps({shown: [value] if is_entry else value}).encode()


def _xml(name: str, value: Any, *, top: bool = False) -> str:
    xmlns = f' xmlns="{NAMESPACE}"' if top else ""
    if isinstance(value, list):
        return "".join(_xml(name, v, top=top) for v in value)
    if isinstance(value, dict):
        return f"<{name}{xmlns}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    text = "true" if value is True else "false" if value is False else str(value)
    return f"<{name}{xmlns}>{_escape(text)}</{name}>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
