"""Every neutral error kind has a row in every front end's table.

The core refuses in its own kinds (`agents/datastore/errors.py`: `ErrorKind`; the KME's in
`agents/kme/errors.py`); each front end maps them to its protocol in one table in its own
``errors.py``: ``ERROR_KINDS`` (the kinds it answers) and ``ERROR_TABLE`` (kind -> its codes).
A front end is found by that convention, so a new one (RESTCONF) is checked as soon as its
``errors.py`` defines the two names; a kind added to the core without a row fails here, for
every front end at once, instead of reaching a client as a KeyError or a generic failure.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import grpc
import pytest
from qstrata.agents.datastore.errors import DatastoreError, ErrorKind

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("netconf", "gnmi", "kme014")
"""Front ends that must have a table; any other package whose errors.py has one is checked too
(agents/restconf, once it exists, must have one as well)."""


def _front_ends() -> dict[str, object]:
    found = {}
    for path in sorted((ROOT / "agents").glob("*/errors.py")):
        module = importlib.import_module(f"qstrata.agents.{path.parent.name}.errors")
        if hasattr(module, "ERROR_TABLE") or path.parent.name in (*REQUIRED, "restconf"):
            found[path.parent.name] = module
    return found


FRONT_ENDS = _front_ends()


@pytest.mark.parametrize("name", sorted(FRONT_ENDS))
def test_every_kind_has_a_row(name: str) -> None:
    module = FRONT_ENDS[name]
    assert hasattr(module, "ERROR_TABLE") and hasattr(module, "ERROR_KINDS"), \
        f"agents/{name}/errors.py needs ERROR_KINDS and ERROR_TABLE (one row per kind)"
    kinds = set(module.ERROR_KINDS)
    assert kinds, name
    missing = kinds - set(module.ERROR_TABLE)
    unknown = set(module.ERROR_TABLE) - kinds
    assert not missing, f"agents/{name}/errors.py: no row for {sorted(missing)}"
    assert not unknown, f"agents/{name}/errors.py: rows for kinds that do not exist: {sorted(unknown)}"


def test_the_required_front_ends_are_found() -> None:
    assert set(REQUIRED) <= set(FRONT_ENDS)
    assert FRONT_ENDS["netconf"].ERROR_KINDS is ErrorKind and FRONT_ENDS["gnmi"].ERROR_KINDS is ErrorKind


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_netconf_renders_every_kind(kind: ErrorKind) -> None:
    from qstrata.agents.netconf.errors import rpc_errors_from_core

    [error] = rpc_errors_from_core(DatastoreError(kind, "refused", "/m:a/b"), lambda path: {"m": "urn:m"})
    assert error.to_element() is not None and error.tag.value  # an allowed (tag, type) pair


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_gnmi_answers_every_kind(kind: ErrorKind) -> None:
    from qstrata.agents.gnmi.errors import from_datastore

    for in_set in (True, False):
        assert isinstance(from_datastore(DatastoreError(kind, "refused"), in_set=in_set).code, grpc.StatusCode)


def test_kme014_answers_every_kind_as_the_standard_allows() -> None:
    from qstrata.agents.kme.errors import KINDS, KmeError
    from qstrata.agents.kme014.errors import answer

    assert {answer(KmeError(kind, "refused"))[0] for kind in KINDS} <= {400, 401, 503}
