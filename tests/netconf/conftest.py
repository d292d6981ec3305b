"""Fixtures the NETCONF test modules share: `m` and `m2`, two sessions to the module's `node`
(each module starts its own agent as `node`), closed after each test."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def m(node: Any, connect: Any) -> Any:
    return connect(node)


@pytest.fixture
def m2(node: Any, connect: Any) -> Any:
    """A second session, for locks, confirmed commits and notifications seen from another session."""
    return connect(node)
