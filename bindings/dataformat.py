"""Reading instance documents from files: format detection and bounds.

Untrusted files are bounded before parsing (a 100 MB document is refused, not loaded), and the
XML goes to libyang's parser, which neither loads DTDs nor expands entities: a DOCTYPE is a
syntax error, so billion-laughs and XXE documents fail fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lxml import etree

from .tree import DataTree, Format
from .validate import InvalidData
from .wire.xmlsafe import MalformedMessage, content_xml, parse_message

NETCONF_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
RESTCONF = "urn:ietf:params:xml:ns:yang:ietf-restconf"
WRAPPERS = {(NETCONF_BASE, "data"), (NETCONF_BASE, "config"), (RESTCONF, "data")}
"""What a saved get-config (NETCONF `<data>`, ncclient's ``data_xml``), an edit's `<config>` or a
RESTCONF GET of the datastore wraps the modules' data in: a backup is validated as it was saved."""
_FIRST_TAG = re.compile(r"<(?:[\w.-]+:)?(data|config|rpc-reply)[\s>/]")


class DataFileError(Exception):
    """A file that is not a readable XML or JSON document within bounds."""


def detect_format(name: str, head: bytes) -> Format:
    """By extension (.xml, .json), else by the first non-blank byte."""
    suffix = Path(name).suffix.lower()
    if suffix == ".xml":
        return "xml"
    if suffix == ".json":
        return "json"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"<":
        return "xml"
    if first in (b"{", b"["):
        return "json"
    raise DataFileError("neither XML nor JSON (expected '<' or '{' at the start)")


def read_data_file(path: Path, *, max_bytes: int = 64 * 1024 * 1024, config_only: bool = False) -> DataTree:
    """Parse and validate one document; raises `DataFileError` or `InvalidData`."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise DataFileError(exc.strerror or str(exc)) from None
    if len(data) > max_bytes:
        raise DataFileError(f"larger than the {max_bytes} byte limit")
    if not data.strip():
        raise DataFileError("empty file: no XML or JSON-IETF document to validate")
    fmt = detect_format(path.name, data[:64])
    if fmt == "xml" and b"<!DOCTYPE" in data.upper():
        raise DataFileError("document type declarations (DTDs, entities) are not accepted")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        return DataTree.parse(unwrap(text, fmt), fmt, config_only=config_only)
    except InvalidData:
        if fmt == "xml":  # a truncated or broken file: say so, not what the schema layer makes of it
            _well_formed(text)
        raise


def _well_formed(text: str) -> None:
    """Raise `DataFileError` naming where the XML stops being well-formed (the safe parser's
    message, with line and column); return when it is well-formed. Instance data may have several
    top-level elements (one per module's top node), which one XML document may not: content after
    the first element is left to the schema layer."""
    data = text.encode()
    try:
        parse_message(data, max_elements=max(len(data) // 4, 1))
    except MalformedMessage as exc:
        if "Extra content at the end of the document" not in str(exc):
            raise DataFileError(str(exc)) from None


def unwrap(text: str, fmt: Format) -> str:
    """The modules' data inside a NETCONF `<rpc-reply>`/`<data>`/`<config>` or a RESTCONF
    `<data>` / ``{"ietf-restconf:data": ...}`` wrapper; any other document as it is. XML keeps
    the file's line numbers; unwrapped JSON is one line (its errors name the data path)."""
    if fmt == "json":
        if '"ietf-restconf:data"' not in text[:256]:
            return text
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            return text  # the schema layer says what is wrong, with its line
        inner = document.get("ietf-restconf:data") if isinstance(document, dict) and len(document) == 1 else None
        return json.dumps(inner) if isinstance(inner, dict) else text
    first = _FIRST_TAG.search(text, 0, 4096)
    if first is None:
        return text
    try:
        data = text.encode()
        root = parse_message(data, max_elements=max(len(data) // 4, 1))  # the file's own size bounds it
    except MalformedMessage as exc:
        raise DataFileError(str(exc)) from None
    if _name(root) == (NETCONF_BASE, "rpc-reply"):
        root = next((child for child in root if _name(child) == (NETCONF_BASE, "data")), root)
    if _name(root) not in WRAPPERS:
        return text
    first_child = next((child for child in root if isinstance(child.tag, str)), None)
    lines_before = (first_child.sourceline or 1) - 1 if first_child is not None else 0
    return "\n" * lines_before + content_xml(root).decode()  # errors keep the file's line numbers



def _name(element: etree._Element) -> tuple[str | None, str]:
    if not isinstance(element.tag, str):  # a comment
        return None, ""
    name = etree.QName(element)
    return name.namespace, name.localname
