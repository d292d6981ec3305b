"""Value prefixes declared on the top-level element, where XML tools keep them.

Values of type instance-identifier and identityref name modules by XML namespace prefix
(RFC 7950 s9.10.3, s9.13.2), and libyang declares each prefix on the leaf that uses it:
``<nacm xmlns="...acm">...<path xmlns:nacm="...acm">/nacm:nacm</path>``. lxml, and with it ncclient
and most Python clients, treats a declaration whose URI an ancestor already binds (here the
default namespace of ``<nacm>``) as redundant and drops it when an element is moved or copied into
another tree: a client that puts the agent's own get-config output into a copy-config sends
``<path>/nacm:nacm</path>`` with ``nacm`` declared nowhere, and the restore is refused. lxml keeps
declarations that are new where they stand, and the top-level element of a data tree is the one
a client moves, so every prefix a subtree's values use is declared there as well.
"""

from __future__ import annotations

import re

__all__ = ["declare_value_prefixes"]

_DECLARATION = re.compile(r' xmlns:([^\s=<>"]+)="([^"<>]*)"(?=[^<>]*>)')
"""A prefix declaration inside a tag: libyang escapes ``<`` and ``>`` in text and attribute
values, so from a tag the next angle bracket is its ``>``, from text the next tag's ``<``."""


def declare_value_prefixes(subtree: str) -> str:
    """`subtree` (one top-level element as libyang printed it) with every prefix declared below
    its start tag also declared on that tag. A prefix bound to two URIs in the subtree is left
    where it is (a top-level declaration would be wrong for one of them)."""
    head_end = subtree.find(">")
    if head_end < 0 or subtree.find(" xmlns:", head_end) < 0:
        return subtree
    found: dict[str, str] = {}
    clashing: set[str] = set()
    for prefix, uri in _declarations(subtree[head_end:]):
        if found.setdefault(prefix, uri) != uri:
            clashing.add(prefix)
    declared = {prefix for prefix, _ in _DECLARATION.findall(subtree, 0, head_end + 1)}
    extra = "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in sorted(found.items())
                    if prefix not in clashing and prefix not in declared)
    if not extra:
        return subtree
    return subtree[:head_end] + extra + subtree[head_end:]


def _declarations(text: str) -> set[tuple[str, str]]:
    """The (prefix, URI) pairs declared in `text`'s tags. The same few declarations repeat on
    thousands of leaves (one per identityref): each distinct one is found once and then cut out
    of the text at C speed, which costs a third of matching every occurrence."""
    found: set[tuple[str, str]] = set()
    while True:
        at = text.find(" xmlns:")
        if at < 0:
            return found
        match = _DECLARATION.match(text, at)
        if match is None:  # text that reads like a declaration: match the rest one by one
            found.update(_DECLARATION.findall(text, at))
            return found
        found.add((match.group(1), match.group(2)))
        text = text.replace(match.group(0), "")
