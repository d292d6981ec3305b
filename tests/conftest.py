"""Shared fixtures for black-box tests against real `qstrata agent` processes.

* `free_port()` -- a TCP port nobody listens on (bind port 0, read it, close).
* `AgentProcess` -- one `qstrata agent` subprocess on 127.0.0.1: host, port, state_dir,
  credentials, process, log_path; `restart()`, `stop()`, `kill()`.
* `agent` (module scope) / `session_agent` (session scope) -- factories
  ``agent(kind, name, twin=True, extra_args=())`` that start an agent, wait until its port
  accepts connections and stop it (SIGTERM, then SIGKILL) when the scope ends. Names of the
  default topology (alice, bob, charlie, sw1, mem-a, mem-b) get their digital twin unless
  ``twin=False``; other names serve an empty device.
* `connect` (function scope) / `netconf_connect` (session scope) -- ``connect(agent, user=None,
  password=None, **kw)`` returns an ncclient Manager logged in as the agent's admin unless
  told otherwise; `connect` closes what it opened at the end of the test.

ncclient's event loop polls every `TICK` seconds (0.1 by default); the `fast_ncclient`
fixture lowers it so a round trip costs milliseconds, which keeps these suites fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agent_processes import (  # noqa: F401 (re-exported for tests that load conftest.py by path)
    HOST,
    QSTRATA,
    START_TIMEOUT,
    STOP_TIMEOUT,
    AgentError,
    AgentFactory,
    AgentProcess,
    free_port,
    port_open,
)


@pytest.fixture(scope="session")
def session_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentFactory]:
    factory = AgentFactory(tmp_path_factory.mktemp("agents"))
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentFactory]:
    factory = AgentFactory(tmp_path_factory.mktemp("agents"))
    yield factory
    factory.close()


# ------------------------------------------------------------------ NETCONF clients


@pytest.fixture(scope="session", autouse=True)
def fast_ncclient() -> Iterator[None]:
    """ncclient's session thread polls every TICK seconds; 0.1 s per round trip is too slow."""
    try:
        import ncclient.transport.parser as nc_parser
        import ncclient.transport.session as nc_session
    except ImportError:  # suites that do not use ncclient still run
        yield
        return
    saved = nc_session.TICK, nc_parser.TICK
    nc_session.TICK = nc_parser.TICK = 0.001
    yield
    nc_session.TICK, nc_parser.TICK = saved


def netconf_manager(agent: AgentProcess, user: str | None = None, password: str | None = None,
                    **kwargs: Any):
    """An ncclient Manager for `agent` (the admin from credentials.json unless a user is given)."""
    from ncclient import manager

    if user is None:
        creds = agent.credentials
        user = creds["username"]
        password = creds["password"] if password is None else password
    options: dict[str, Any] = dict(host=agent.host, port=agent.port, username=user, password=password,
                                   hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=30)
    options.update(kwargs)
    return manager.connect(**options)


@pytest.fixture(scope="session")
def netconf_connect() -> Callable[..., Any]:
    """``netconf_connect(agent, user=None, password=None, **kw)``; the caller closes the session."""
    return netconf_manager


@pytest.fixture
def connect() -> Iterator[Callable[..., Any]]:
    """``connect(agent, user=None, password=None, **kw)``; sessions are closed after the test."""
    opened: list[Any] = []

    def _connect(agent: AgentProcess, user: str | None = None, password: str | None = None, **kwargs: Any):
        m = netconf_manager(agent, user, password, **kwargs)
        opened.append(m)
        return m

    yield _connect
    for m in opened:
        with contextlib.suppress(Exception):
            if m.connected:
                m.close_session()
