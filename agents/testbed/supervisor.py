"""Keeps the processes of `qstrata up --processes` running: the world service and one agent each.

A child that dies is reaped at once (asyncio waits on it), reported (`say`: the status table's
events and STATE_DIR/up.log) and started again with the same command line -- the same ports, the
same state directory, so endpoints.json stays true and the agent serves its saved configuration
-- after a back-off: exponential with jitter (the collector's `RetryPolicy`), reset once the child
has run `stable_after` seconds. What a row of the status table shows is `Child.status`.

`stop` stops supervising first (no restart can start after it), then ends the children in the
order given, each with SIGTERM and, after a grace period, SIGKILL. Children run in their own
session, so a Ctrl-C on the terminal reaches `up` alone and `up` stops them in order. A child
given a lifeline holds the read end of a pipe on its standard input: if `up` dies, however it
dies, the pipe closes and the child (the world service) stops; agents stop with their world.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from qstrata.collectors.session import RetryPolicy

log = logging.getLogger("qstrata.up")

RESTART_POLICY = RetryPolicy(initial=0.5, factor=2.0, maximum=30.0, jitter=0.2)
STABLE_AFTER = 30.0
"""Seconds a child must run before its next death counts as a first one again."""
STOP_GRACE = 15.0
EXIT_DEVICE_LOST = 3
"""`qstrata agent`'s exit code when its device (the world service) went away."""


class StartError(Exception):
    """A child could not start; the message names it and says why."""


@dataclass
class ChildSpec:
    name: str
    """How the child is named in messages: "agent alice", "world service"."""
    argv: list[str]
    log: Path
    ready: Callable[[], Awaitable[bool]]
    """One probe: is the child serving yet?"""
    lifeline: bool = False
    start_timeout: float = 120.0
    restarted: Callable[[], Awaitable[None]] | None = None
    """Called once a restarted child serves again (the world service gets its plant changes back)."""


@dataclass(eq=False)
class Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    attempt: int = 0
    status: str = "starting"
    """starting, up, DOWN (back in N s), restarting, stopped."""
    _watch: asyncio.Task | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def describe(self) -> str:
        """For the status table: pid and restarts, or what it is waiting for."""
        if self.status != "up":
            return self.status
        return f"pid {self.pid}" + (f", {self.restarts} restart{'s' if self.restarts > 1 else ''}" if self.restarts else "")


class Supervisor:
    """`say` reports every death and return in words; `watcher(child, down, text)` hears the
    same as facts (`up` raises and clears the collector's agent-unreachable alarm with them)."""

    def __init__(self, say: Callable[[str], None], policy: RetryPolicy = RESTART_POLICY,
                 stable_after: float = STABLE_AFTER,
                 watcher: Callable[[Child, bool, str], None] | None = None) -> None:
        self.say = say
        self.watcher = watcher
        self.policy = policy
        self.stable_after = stable_after
        self.children: list[Child] = []
        self.stopping = False

    async def start(self, spec: ChildSpec) -> Child:
        """Start a child and wait until it serves; raises `StartError` when it does not."""
        child = Child(spec)
        self.children.append(child)
        await self._spawn(child)
        await self._until_ready(child)
        child.status = "up"
        return child

    def supervise(self) -> None:
        """From now on a child that dies is restarted."""
        for child in self.children:
            if child._watch is None:
                child._watch = asyncio.create_task(self._watch(child), name=f"supervise {child.spec.name}")

    async def halt(self) -> None:
        """Stop supervising: from now on no child is restarted (a restart under way is abandoned
        and its new process stopped with the others)."""
        if self.stopping:
            return
        self.stopping = True
        watches = [c._watch for c in self.children if c._watch is not None]
        for task in watches:
            task.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        log.info("supervision ended: %d processes to stop, none is restarted", len(self.children))

    async def stop(self, order: list[list[Child]] | None = None) -> None:
        """`halt`, then stop the children: group after group (`order`; default: one at a time,
        the reverse of start), the children of a group together."""
        await self.halt()
        for group in order if order is not None else [[c] for c in reversed(self.children)]:
            await asyncio.gather(*(self._terminate(child) for child in group))

    # -- one child ---------------------------------------------------------------------------

    async def _spawn(self, child: Child) -> None:
        spec = child.spec
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as out:
            child.process = await asyncio.create_subprocess_exec(
                *spec.argv, stdin=asyncio.subprocess.PIPE if spec.lifeline else asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        child.started = time.monotonic()
        log.info("%s started (pid %d)", spec.name, child.process.pid)

    async def _until_ready(self, child: Child) -> None:
        assert child.process is not None
        spec = child.spec
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.start_timeout
        while loop.time() < deadline:
            if child.process.returncode is not None:
                raise StartError(f"{spec.name} {_exit_text(child.process.returncode)}: {_tail(spec.log)}")
            if await spec.ready():
                return
            await asyncio.sleep(0.2)
        raise StartError(f"{spec.name} did not serve within {spec.start_timeout:g} s (log: {spec.log})")

    async def _watch(self, child: Child) -> None:
        """Wait for the child to die; restart it with back-off until it serves again; repeat."""
        spec = child.spec
        while True:
            assert child.process is not None
            code = await child.process.wait()
            ran = time.monotonic() - child.started
            if ran >= self.stable_after:
                child.attempt = 0
            delay = self.policy.delay(child.attempt)
            child.attempt += 1
            child.status = f"DOWN, back in {delay:.1f} s"
            what = f"{spec.name} (pid {child.pid}) {_exit_text(code)} after {ran:.1f} s"
            self.say(f"{what}; restarting in {delay:.1f} s")
            if self.watcher is not None:
                self.watcher(child, True, what)
            await asyncio.sleep(delay)
            child.status = "restarting"
            await self._spawn(child)
            child.restarts += 1
            try:
                await self._until_ready(child)
            except StartError as exc:
                self.say(f"{spec.name}: restart failed: {exc}")
                continue
            child.status = "up"
            what = f"{spec.name} is back (pid {child.pid}, restart {child.restarts})"
            self.say(what)
            if self.watcher is not None:
                self.watcher(child, False, what)
            if spec.restarted is not None:
                try:
                    await spec.restarted()
                except Exception as exc:  # the child died again meanwhile: its next restart retries
                    log.warning("%s: after the restart: %s", spec.name, exc)

    async def _terminate(self, child: Child) -> None:
        proc = child.process
        child.status = "stopped"
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("%s (pid %d) did not stop within %g s: killed", child.spec.name, proc.pid, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if code == EXIT_DEVICE_LOST:
        return "stopped: its device went away (world service lost)"
    return f"exited with code {code}"


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {path})"
    return " / ".join(text[-lines:]) or "(empty log)"
