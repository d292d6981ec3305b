"""The supervisor of `qstrata up --processes`, with real (tiny) processes: a dead child is reaped
at once, reported, and restarted after an exponential back-off that resets once the child was
stable; what the status table's PROCESS column shows at each step; nothing restarts once `stop`
began; a child that dies while starting is a one-line StartError with its log. And the agent rows
of the table, which must keep to 80 columns with that column."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
from qstrata.agents.testbed.hosting import UNIX_PATH_MAX, _socket_path
from qstrata.agents.testbed.status import AgentRow, StatusView, render_table
from qstrata.agents.testbed.supervisor import ChildSpec, StartError, Supervisor
from qstrata.collectors.session import RetryPolicy

SLEEPER = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]


async def serving() -> bool:
    return True


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_killed_child_is_reaped_reported_and_restarted_with_back_off(tmp_path):
    async def main() -> None:
        said: list[str] = []
        seen: list[tuple[bool, str]] = []
        sup = Supervisor(said.append, RetryPolicy(initial=0.3, factor=2.0, maximum=5.0, jitter=0.0), stable_after=2.0,
                         watcher=lambda child, down, text: seen.append((down, text)))
        child = await sup.start(ChildSpec("agent alice", SLEEPER, tmp_path / "alice.log", ready=serving))
        sup.supervise()
        try:
            first = child.pid
            assert child.describe() == f"pid {first}"
            os.kill(first, signal.SIGKILL)
            await until(lambda: child.status.startswith("DOWN"))
            assert child.describe() == "DOWN, back in 0.3 s"
            assert not Path(f"/proc/{first}").exists(), "not reaped"
            await until(lambda: child.status == "up" and child.pid != first)
            assert child.describe() == f"pid {child.pid}, 1 restart"
            assert said[0].startswith(f"agent alice (pid {first}) was killed by SIGKILL after ")
            assert said[0].endswith("restarting in 0.3 s") and said[1] == f"agent alice is back (pid {child.pid}, restart 1)"
            assert [down for down, _ in seen] == [True, False]
            # dies again at once: the next delay doubles
            os.kill(child.pid, signal.SIGKILL)
            await until(lambda: len(said) == 4)
            assert said[2].endswith("restarting in 0.6 s")
            # ran longer than stable_after: back to the first delay
            await asyncio.sleep(2.2)
            os.kill(child.pid, signal.SIGKILL)
            await until(lambda: len(said) == 6)
            assert said[4].endswith("restarting in 0.3 s")
            assert child.restarts == 3
        finally:
            await sup.stop()
        assert child.process.returncode is not None and child.status == "stopped"

    asyncio.run(main())


def test_nothing_restarts_once_stop_began(tmp_path):
    async def main() -> None:
        said: list[str] = []
        sup = Supervisor(said.append, RetryPolicy(initial=0.05, jitter=0.0))
        children = [await sup.start(ChildSpec(f"agent {n}", SLEEPER, tmp_path / f"{n}.log", ready=serving))
                    for n in ("a", "b")]
        sup.supervise()
        pids = [c.pid for c in children]
        await sup.stop()
        await asyncio.sleep(0.3)  # longer than the back-off
        assert said == []
        assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
        assert [c.pid for c in children] == pids

    asyncio.run(main())


def test_a_child_that_dies_while_starting_is_one_clear_error(tmp_path):
    async def main() -> None:
        sup = Supervisor(print)
        never = [sys.executable, "-c", "import sys; print('cannot listen on 127.0.0.1:830: Address in use'); "
                                       "sys.exit(2)"]

        async def not_yet() -> bool:
            return False

        with pytest.raises(StartError, match=r"agent x exited with code 2: cannot listen on 127\.0\.0\.1:830"):
            await sup.start(ChildSpec("agent x", never, tmp_path / "x.log", ready=not_yet))
        await sup.stop()

    asyncio.run(main())


def test_agent_rows_show_the_process_and_keep_to_80_columns():
    rows = [AgentRow("charlie", "qkd", "127.0.0.1:45121", "127.0.0.1:41421", "yes", "pid 812345, 2 restarts",
                     kme="127.0.0.1:40001"),
            AgentRow("mem-b", "memory", "127.0.0.1:35103", "127.0.0.1:41421", "DOWN", "DOWN, back in 0.6 s")]
    lines = render_table(StatusView("qstrata up", rows))
    header = next(line for line in lines if line.startswith("AGENT"))
    assert header.split() == ["AGENT", "KIND", "NETCONF", "GNMI", "COLLECTED", "PROCESS"]
    assert any(line.startswith("mem-b") and line.endswith("DOWN      DOWN, back in 0.6 s") for line in lines), lines
    assert max(len(line) for line in lines) <= 80
    one_process = render_table(StatusView("qstrata up", [AgentRow("alice", "qkd", "127.0.0.1:1", "127.0.0.1:2")]))
    assert "PROCESS" not in "".join(one_process)
    with_kme = render_table(StatusView("qstrata up", [AgentRow("alice", "qkd", "127.0.0.1:1", "127.0.0.1:2",
                                                               kme="127.0.0.1:3")]))
    assert next(line for line in with_kme if line.startswith("AGENT")).split() == [
        "AGENT", "KIND", "NETCONF", "GNMI", "KME", "COLLECTED"]  # in one process the KME column has the room


def test_the_world_socket_falls_back_to_a_short_private_folder(tmp_path):
    """A Unix socket path holds at most 107 bytes: a deep state directory gets its world socket in a
    private temporary folder instead (removed when up stops)."""
    assert _socket_path(tmp_path) == tmp_path / "world.sock"
    path = _socket_path(tmp_path / ("deep" * 30))
    try:
        assert len(os.fsencode(path)) <= UNIX_PATH_MAX
        assert path.parent.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(path.parent)
