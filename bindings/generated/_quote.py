"""Shared by the generated modules (scripts/gen_paths.py; do not edit)."""


def q(value: object) -> str:
    """Quote a key value for an XPath predicate."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text + "'" if "'" not in text else '"' + text + '"'
