"""``<rpc-error>`` and ``<rpc-reply>`` rendering (RFC 6241 s4.2, s4.3 and Appendix A).

Every failure a client can see is an `RpcError`: operations raise it, the dispatcher catches
it and renders it with `rpc_reply_with_errors`. Keeping one type for all of them means no
code path can leak a Python traceback, and every reply carries the fields RFC 6241 requires
(error-type, error-tag, error-severity) with the error-info Appendix A prescribes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree
from qstrata.agents.datastore.errors import ErrorKind

__all__ = [
    "BASE_NS",
    "ERROR_KINDS",
    "ERROR_TABLE",
    "ErrorSeverity",
    "ErrorTag",
    "ErrorType",
    "RpcError",
    "rpc_reply_data",
    "rpc_reply_ok",
    "rpc_reply_with_errors",
]

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
"""The NETCONF base namespace; base:1.1 reuses it for every protocol element."""

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_B = "{" + BASE_NS + "}"


class ErrorType(StrEnum):
    """RFC 6241 s4.3 error-type: the conceptual layer where the error occurred."""

    TRANSPORT = "transport"
    RPC = "rpc"
    PROTOCOL = "protocol"
    APPLICATION = "application"


class ErrorSeverity(StrEnum):
    """RFC 6241 s4.3 error-severity."""

    ERROR = "error"
    WARNING = "warning"


_T, _R, _P, _A = ErrorType.TRANSPORT, ErrorType.RPC, ErrorType.PROTOCOL, ErrorType.APPLICATION


class ErrorTag(StrEnum):
    """RFC 6241 Appendix A error-tag values.

    Each member knows the error-types Appendix A allows for it (`allowed_types`), the one used
    when an `RpcError` names none (`default_type`), and the error-info children Appendix A
    says it carries (`info_elements`).
    """

    # value, allowed types, default type, error-info elements
    IN_USE = ("in-use", (_P, _A), _P, ())
    INVALID_VALUE = ("invalid-value", (_P, _A), _A, ())
    TOO_BIG = ("too-big", (_T, _R, _P, _A), _A, ())
    MISSING_ATTRIBUTE = ("missing-attribute", (_R, _P, _A), _R, ("bad-attribute", "bad-element"))
    BAD_ATTRIBUTE = ("bad-attribute", (_R, _P, _A), _R, ("bad-attribute", "bad-element"))
    UNKNOWN_ATTRIBUTE = ("unknown-attribute", (_R, _P, _A), _R, ("bad-attribute", "bad-element"))
    MISSING_ELEMENT = ("missing-element", (_P, _A), _P, ("bad-element",))
    BAD_ELEMENT = ("bad-element", (_P, _A), _P, ("bad-element",))
    UNKNOWN_ELEMENT = ("unknown-element", (_P, _A), _P, ("bad-element",))
    UNKNOWN_NAMESPACE = ("unknown-namespace", (_P, _A), _P, ("bad-element", "bad-namespace"))
    ACCESS_DENIED = ("access-denied", (_P, _A), _P, ())
    LOCK_DENIED = ("lock-denied", (_P,), _P, ("session-id",))
    RESOURCE_DENIED = ("resource-denied", (_T, _R, _P, _A), _A, ())
    ROLLBACK_FAILED = ("rollback-failed", (_P, _A), _A, ())
    DATA_EXISTS = ("data-exists", (_A,), _A, ())
    DATA_MISSING = ("data-missing", (_A,), _A, ())
    OPERATION_NOT_SUPPORTED = ("operation-not-supported", (_P, _A), _P, ())
    OPERATION_FAILED = ("operation-failed", (_R, _P, _A), _A, ())
    PARTIAL_OPERATION = ("partial-operation", (_A,), _A, ("ok-element", "err-element", "noop-element"))
    MALFORMED_MESSAGE = ("malformed-message", (_R,), _R, ())

    allowed_types: frozenset[ErrorType]
    default_type: ErrorType
    info_elements: tuple[str, ...]

    def __new__(
        cls,
        value: str,
        allowed: tuple[ErrorType, ...],
        default: ErrorType,
        info: tuple[str, ...],
    ) -> ErrorTag:
        member = str.__new__(cls, value)
        member._value_ = value
        member.allowed_types = frozenset(allowed)
        member.default_type = default
        member.info_elements = info
        return member


InfoItem = tuple[str, str] | etree._Element
"""An error-info child: ``(qname, text)`` -- a bare name is in the base namespace, Clark
notation ``{ns}name`` otherwise -- or a ready-made element (copied into the reply)."""


@dataclass(eq=False)
class RpcError(Exception):
    """One ``<rpc-error>`` (RFC 6241 s4.3). Raise it from an operation; the dispatcher turns it
    into a reply, so nothing about the failure reaches the client except these fields.

    ``path`` is an XPath naming the offending node (error-path); every prefix it uses must be
    in ``path_namespaces`` (prefix -> namespace URI), which are declared on the error-path
    element so the client can resolve them. ``message`` is human-readable English text.
    """

    tag: ErrorTag
    message: str | None = None
    error_type: ErrorType | None = None
    severity: ErrorSeverity = ErrorSeverity.ERROR
    app_tag: str | None = None
    path: str | None = None
    path_namespaces: Mapping[str, str] = field(default_factory=dict)
    info: Sequence[InfoItem] = field(default_factory=tuple)
    lang: str = "en"

    def __post_init__(self) -> None:
        self.tag = ErrorTag(self.tag)
        if self.error_type is None:
            self.error_type = self.tag.default_type
        self.error_type = ErrorType(self.error_type)
        self.severity = ErrorSeverity(self.severity)
        if self.error_type not in self.tag.allowed_types:
            allowed = ", ".join(sorted(t.value for t in self.tag.allowed_types))
            raise ValueError(
                f"error-tag {self.tag.value} does not allow error-type {self.error_type.value} "
                f"(RFC 6241 Appendix A allows: {allowed})"
            )
        if None in self.path_namespaces or "" in self.path_namespaces:
            raise ValueError("XPath cannot use a default namespace: give every namespace a prefix")
        super().__init__(self.message or self.tag.value)

    def __str__(self) -> str:
        return f"{self.tag.value}: {self.message}" if self.message else self.tag.value

    def to_element(self) -> etree._Element:
        """Render as a detached ``<rpc-error>`` element in the base namespace."""
        error = etree.Element(_B + "rpc-error", nsmap={None: BASE_NS})
        _text_child(error, "error-type", self.error_type.value)  # type: ignore[union-attr]
        _text_child(error, "error-tag", self.tag.value)
        _text_child(error, "error-severity", self.severity.value)
        if self.app_tag is not None:
            _text_child(error, "error-app-tag", self.app_tag)
        if self.path is not None:
            path = etree.SubElement(error, _B + "error-path", nsmap=dict(self.path_namespaces))
            path.text = self.path
        if self.message is not None:
            message = _text_child(error, "error-message", self.message)
            message.set(_XML_LANG, self.lang)
        if self.info:
            info = etree.SubElement(error, _B + "error-info")
            for item in self.info:
                if isinstance(item, etree._Element):
                    info.append(_detached_copy(item))
                else:
                    qname, text = item
                    child = etree.SubElement(info, qname if qname.startswith("{") else _B + qname)
                    child.text = text
        return error


def rpc_reply_with_errors(
    errors: Sequence[RpcError],
    rpc_attributes: Mapping[str, str],
    *,
    nsmap: Mapping[str, str] | None = None,
) -> bytes:
    """Serialize an ``<rpc-reply>`` with one ``<rpc-error>`` per error.

    ``rpc_attributes`` are the attributes of the request's ``<rpc>`` (``dict(rpc.attrib)``:
    Clark-notation keys for namespaced ones); RFC 6241 s4.2 requires echoing all of them,
    message-id included. ``nsmap`` (prefix -> URI, e.g. the ``<rpc>``'s own declarations)
    lets the echoed attributes keep the client's prefixes. For a message too broken to have
    attributes, pass ``{}``: the reply then has no message-id, as RFC 6241 s4.3 expects for
    malformed-message.
    """
    if not errors:
        raise ValueError("rpc_reply_with_errors needs at least one error")
    reply = _reply_element(rpc_attributes, nsmap)
    for error in errors:
        reply.append(error.to_element())
    return _serialize(reply)


def rpc_reply_ok(rpc_attributes: Mapping[str, str], *, nsmap: Mapping[str, str] | None = None) -> bytes:
    """Serialize ``<rpc-reply><ok/></rpc-reply>`` echoing the ``<rpc>`` attributes."""
    reply = _reply_element(rpc_attributes, nsmap)
    etree.SubElement(reply, _B + "ok")
    return _serialize(reply)


def rpc_reply_data(
    rpc_attributes: Mapping[str, str],
    data: etree._Element | Iterable[etree._Element] | bytes | None,
    *,
    nsmap: Mapping[str, str] | None = None,
) -> bytes:
    """Serialize ``<rpc-reply><data>...</data></rpc-reply>`` echoing the ``<rpc>`` attributes.

    ``data`` may be:

    * a ``<data>`` element in the base namespace: used as is (moved, not copied);
    * any other element, or an iterable of elements: they become the children of ``<data>``
      (moved, not copied -- a 10 MB tree is not duplicated);
    * bytes: the already-serialized *content* of ``<data>`` (zero or more elements, each
      declaring its own namespaces), spliced in verbatim without re-parsing;
    * None: an empty ``<data/>``.
    """
    reply = _reply_element(rpc_attributes, nsmap)
    if isinstance(data, bytes | bytearray | memoryview):
        etree.SubElement(reply, _B + "data")
        head, sep, tail = _serialize(reply).rpartition(b"<data/>")
        if not sep:  # pragma: no cover - the reply always ends with the empty <data/>
            raise AssertionError("serialized reply lost its <data/> placeholder")
        return b"".join((head, b"<data>", bytes(data), b"</data>", tail))
    if isinstance(data, etree._Element) and data.tag == _B + "data":
        reply.append(data)
    else:
        container = etree.SubElement(reply, _B + "data")
        if isinstance(data, etree._Element):
            data = (data,)
        for child in data or ():
            container.append(child)
    return _serialize(reply)


def _reply_element(rpc_attributes: Mapping[str, str], nsmap: Mapping[str, str] | None) -> etree._Element:
    declared: dict[str | None, str] = {None: BASE_NS}
    for prefix, uri in (nsmap or {}).items():
        # The base namespace stays the default one, so <data/> below serializes unprefixed.
        if prefix and prefix != "xml" and uri and uri != BASE_NS:
            declared[prefix] = uri
    reply = etree.Element(_B + "rpc-reply", nsmap=declared)
    for name, value in rpc_attributes.items():
        reply.set(name, value)
    return reply


def _text_child(parent: etree._Element, name: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, _B + name)
    child.text = text
    return child


def _detached_copy(element: etree._Element) -> etree._Element:
    duplicate = copy.deepcopy(element)
    duplicate.tail = None
    return duplicate


def _serialize(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


# -- the core's neutral errors, in NETCONF vocabulary (RFC 6241 Appendix A, RFC 7950 s15) ----

ERROR_KINDS = ErrorKind
"""The kinds this front end must answer: every one has a row in `ERROR_TABLE`."""
ERROR_TABLE: dict[ErrorKind, tuple[ErrorTag, str | None]] = {
    # the core's kind: (error-tag, default error-app-tag)
    ErrorKind.SYNTAX: (ErrorTag.INVALID_VALUE, None),
    ErrorKind.UNKNOWN_NODE: (ErrorTag.UNKNOWN_ELEMENT, None),
    ErrorKind.UNKNOWN_NAMESPACE: (ErrorTag.UNKNOWN_NAMESPACE, None),
    ErrorKind.INVALID_VALUE: (ErrorTag.INVALID_VALUE, None),
    ErrorKind.MISSING_KEY: (ErrorTag.MISSING_ELEMENT, None),
    ErrorKind.MANDATORY: (ErrorTag.MISSING_ELEMENT, None),
    ErrorKind.MISSING_CHOICE: (ErrorTag.DATA_MISSING, "missing-choice"),
    ErrorKind.DUPLICATE: (ErrorTag.BAD_ELEMENT, None),
    ErrorKind.NOT_UNIQUE: (ErrorTag.OPERATION_FAILED, "data-not-unique"),
    ErrorKind.TOO_MANY: (ErrorTag.OPERATION_FAILED, "too-many-elements"),
    ErrorKind.TOO_FEW: (ErrorTag.OPERATION_FAILED, "too-few-elements"),
    ErrorKind.WHEN: (ErrorTag.UNKNOWN_ELEMENT, None),
    ErrorKind.MUST: (ErrorTag.OPERATION_FAILED, "must-violation"),
    ErrorKind.INSTANCE_REQUIRED: (ErrorTag.DATA_MISSING, "instance-required"),
    ErrorKind.STATE_IN_CONFIG: (ErrorTag.UNKNOWN_ELEMENT, None),
    ErrorKind.EXISTS: (ErrorTag.DATA_EXISTS, None),
    ErrorKind.MISSING: (ErrorTag.DATA_MISSING, None),
    ErrorKind.LOCKED: (ErrorTag.IN_USE, None),
    ErrorKind.LOCK_DENIED: (ErrorTag.LOCK_DENIED, None),
    ErrorKind.NOT_LOCKED: (ErrorTag.OPERATION_FAILED, None),
    ErrorKind.IN_PROGRESS: (ErrorTag.IN_USE, None),
    ErrorKind.ACCESS_DENIED: (ErrorTag.ACCESS_DENIED, None),
    ErrorKind.DEVICE_REFUSED: (ErrorTag.OPERATION_FAILED, None),
    ErrorKind.BAD_REQUEST: (ErrorTag.INVALID_VALUE, None),
    ErrorKind.NOT_SUPPORTED: (ErrorTag.OPERATION_NOT_SUPPORTED, None),
    ErrorKind.FAILED: (ErrorTag.OPERATION_FAILED, None),
    ErrorKind.OTHER: (ErrorTag.OPERATION_FAILED, None),
}
_NAMES_ELEMENT = frozenset({ErrorTag.UNKNOWN_ELEMENT, ErrorTag.MISSING_ELEMENT, ErrorTag.BAD_ELEMENT})


def error_tag_of(kind: str) -> tuple[ErrorTag, str | None]:
    """The error-tag (and the app tag RFC 7950 s15 prescribes, if any) for a core error kind
    (a data issue's kind has the same values)."""
    return ERROR_TABLE[ErrorKind(str(kind))]


def rpc_errors_from_core(exc, path_namespaces) -> list[RpcError]:
    """One rpc-error per issue of a `DatastoreError` (continue-on-error reports several).

    `path_namespaces(path)` declares the module prefixes the error-path uses."""
    errors = []
    issues = exc.issues or (None,)
    for i, issue in enumerate(issues):
        first = i == 0 or issue is None
        kind = exc.kind if first else issue.kind
        tag, default_app_tag = error_tag_of(kind)
        path = exc.path if first else issue.path
        message = exc.message if first else issue.message
        app_tag = (exc.app_tag if first else issue.app_tag) or default_app_tag
        node = exc.node if first else issue.node
        info: list[tuple[str, str]] = list(exc.info.items()) if first else []
        if tag in _NAMES_ELEMENT and "bad-element" not in exc.info:
            name = node or (path.rsplit("/", 1)[-1].split("[", 1)[0].split(":")[-1] if path else None)
            if name:
                info.append(("bad-element", name))
        error_type = ErrorType.PROTOCOL if tag in (ErrorTag.LOCK_DENIED, ErrorTag.IN_USE) else ErrorType.APPLICATION
        if error_type not in tag.allowed_types:
            error_type = tag.default_type
        errors.append(RpcError(tag, message, error_type=error_type, app_tag=app_tag, path=path,
                               path_namespaces=path_namespaces(path), info=info))
    return errors
