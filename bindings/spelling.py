"""What a misspelt key in a hand-written file probably meant.

Configuration files are typed by people: `locaton`, `lenght_km`, `fibers`. Silently ignoring such
a key hides the mistake until much later, and calling it only "unknown" or reporting the real key
as "missing" leaves the person to find the typo. Both file formats of the house (topology YAML,
collector YAML) name the unknown key and, when a known one is close, the one it probably was. It
lives here because `bindings` is the one package that agents and collectors may both import.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_match(word: str, known: Iterable[str]) -> str | None:
    """The known word `word` is probably a misspelling of (difflib's ratio >= 0.6), else None."""
    found = difflib.get_close_matches(str(word), [str(k) for k in known], n=1)
    return found[0] if found else None


def hint(word: object, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a known word is close, else ``; expected one of a, b, c``."""
    known = [str(k) for k in known]
    guess = close_match(str(word), known)
    return f" (did you mean {guess!r}?)" if guess is not None else f"; expected one of {', '.join(known)}"


def unknown(word: object, known: Iterable[str], what: str = "key") -> str:
    """The message for an unknown key whose path is already named: ``unknown key (did you mean
    'x'?)``, or without a close match, ``unknown key; expected one of a, b, c``."""
    return f"unknown {what}{hint(word, known)}"
