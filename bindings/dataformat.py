"""Reading instance documents from files: format detection and bounds.

Untrusted files are bounded before parsing (a 100 MB document is refused, not loaded), and the
XML goes to libyang's parser, which neither loads DTDs nor expands entities: a DOCTYPE is a
syntax error, so billion-laughs and XXE documents fail fast.
"""

from __future__ import annotations

from pathlib import Path

from .tree import DataTree, Format


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
    return DataTree.parse(text, fmt, config_only=config_only)
