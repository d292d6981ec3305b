"""RESTCONF's error table, by the front ends' convention (``ERROR_KINDS`` and ``ERROR_TABLE`` in
``agents/<front end>/errors.py``): every kind the core refuses in has a row, every row an RFC 8040
error-tag with its HTTP status, and every kind renders as an ``ietf-restconf:errors`` body."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from qstrata.agents.datastore.errors import DatastoreError, ErrorKind
from qstrata.agents.restconf import errors


def test_every_kind_has_a_row_with_an_rfc_8040_tag():
    kinds = set(errors.ERROR_KINDS)
    assert kinds == set(ErrorKind)
    assert set(errors.ERROR_TABLE) == kinds, sorted(kinds ^ set(errors.ERROR_TABLE))
    assert {tag for tag, _ in errors.ERROR_TABLE.values()} <= set(errors.STATUS)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_renders(kind: ErrorKind):
    error = errors.from_core(DatastoreError(kind, "refused", "/m:a/b"))
    assert error.http_status == errors.STATUS[errors.ERROR_TABLE[kind][0]]
    body = json.loads(errors.errors_json(error))["ietf-restconf:errors"]["error"][0]
    assert body["error-tag"] == errors.ERROR_TABLE[kind][0] and body["error-type"] in ("protocol", "application")
    xml = etree.fromstring(errors.errors_xml(error, lambda module: "urn:m"))
    assert xml.tag == f"{{{errors.RESTCONF_NS}}}errors"
