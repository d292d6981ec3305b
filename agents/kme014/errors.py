"""The core's error kinds as ETSI GS QKD 014 answers: one table, and the standard's Error object.

ETSI GS QKD 014 V1.1.1 (clause 5) answers 400 (bad request format), 401 (unauthorized) and 503
(error on the server side); every refusal here is one of those, with an Error object
``{"message": ..., "details": [...]}`` (details only when there are figures to give).
A link held back after an eavesdropper's attack (link-compromised) is a 503 like a store that
ran dry: nothing the client sent was wrong, the server cannot serve now, and the message names
the link, so a client can wait, alert, or ask for key over another route.
"""

from __future__ import annotations

from typing import Any

from qstrata.agents.kme.errors import KINDS, KmeError

ERROR_KINDS = KINDS
"""The kinds this front end must answer: the KME's (`agents/kme/errors.py`); every one has a row
in `ERROR_TABLE` (tests/datastore/test_error_tables.py)."""
ERROR_TABLE: dict[str, int] = {
    "bad-request": 400,
    "unauthorized": 401,
    "not-enough-key": 503,
    "rate-limited": 503,
    "peer-unreachable": 503,
    "no-key-source": 503,
    "link-compromised": 503,
    "internal": 503,
}


def error_object(message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return body


def answer(exc: KmeError) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Error object) of a refusal."""
    return ERROR_TABLE[exc.kind], error_object(exc.message, exc.details)
