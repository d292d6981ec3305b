"""The capabilities an agent advertises in its <hello> (RFC 6241 s8, RFC 7950 s5.6.4)."""

from __future__ import annotations

from qstrata.bindings.schema import Schema

UNSUPPORTED_FEATURES = {"url"}  # ietf-netconf :url is not implemented

BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"

PROTOCOL_CAPABILITIES = (
    BASE_10,
    BASE_11,
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:validate:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:startup:1.0",
    "urn:ietf:params:netconf:capability:xpath:1.0",
    "urn:ietf:params:netconf:capability:notification:1.0",
    "urn:ietf:params:netconf:capability:interleave:1.0",
    "urn:ietf:params:netconf:capability:with-defaults:1.0"
    "?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim",
)


def server_capabilities(schema: Schema, content_id: str) -> list[str]:
    """Protocol capabilities, yang-library 1.1 with content-id, and a module URI per YANG 1.0 module
    (YANG 1.1 modules are announced through the yang-library only, per RFC 7950 s5.6.4)."""
    caps = list(PROTOCOL_CAPABILITIES)
    caps.append(
        f"urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&content-id={content_id}"
    )
    for module in schema.implemented_modules():
        name = module.name()
        if name in ("yang", "ietf-yang-schema-mount") or schema.is_yang11(name):
            continue
        uri = f"{schema.namespace(name)}?module={name}"
        revision = schema.revision(name)
        if revision:
            uri += f"&revision={revision}"
        features = [f.name() for f in module.features() if f.state() and f.name() not in UNSUPPORTED_FEATURES]
        if features:
            uri += "&features=" + ",".join(features)
        caps.append(uri)
    return caps

