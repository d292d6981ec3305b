"""What a check is, what it expects, and what running it gave: pure data, no I/O.

A check is a record, not a code path, so a report can cite the clause each verdict rests on and a
new check is a few lines in one of the check tables (`netconf_checks`, `gnmi_checks`, `qkd_checks`,
`hostile_checks`, `kme_checks`, `rc_checks`). `REGISTRY` is the one list of every check; tables add to it with `register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

__all__ = [
    "ALL_PROFILES", "KME_PROFILE", "Check", "Data", "Error", "Evidence", "GnmiExpect", "KmeExpect", "Ok",
    "Outcome", "REGISTRY", "RcExpect", "Result", "Verdict", "register",
]

ALL_PROFILES = frozenset({"etsi-qkd-015", "qfs", "optical-switch"})
"""The management-interface profiles (NETCONF and gNMI checks apply to every one of them)."""
KME_PROFILE = "etsi-qkd-014"
"""The key delivery API (ETSI GS QKD 014 over HTTPS): its checks only, no NETCONF, no gNMI."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    ERROR = "error"
    """The check could not be carried out (the session broke, a set-up step failed): no verdict on
    the device's conformance, but worth a look."""


# ------------------------------------------------------------------ NETCONF expectations


@dataclass(frozen=True)
class Ok:
    """An rpc-reply with <ok/> (RFC 6241 s4.4)."""

    def describe(self) -> str:
        return "rpc-reply <ok/>"


@dataclass(frozen=True)
class Error:
    """An rpc-reply with at least one rpc-error whose error-tag is one of `tags` (RFC 6241 s4.3,
    appendix A). Every rpc-error must carry error-type, error-tag and error-severity. When `path`
    is given, the error-path must exist and end with these local names (prefixes and predicates
    ignored: servers may pick any prefix). `info` names an element required in error-info, as
    ``name`` or ``name=value`` (the value the RFC says it holds, e.g. ``bad-attribute=message-id``).
    `about` names the element the error must be about, where the RFC leaves open how a server says
    so: the error-path ends in it, or error-info's bad-element is it. With these an error that
    happens to carry the right tag for another reason (a lock, a missing key, a bad login) does
    not pass."""

    tags: tuple[str, ...]
    path: str | None = None
    info: str | None = None
    error_type: str | None = None
    about: str | None = None

    def describe(self) -> str:
        text = "rpc-error error-tag " + " or ".join(self.tags)
        if self.error_type:
            text += f", error-type {self.error_type}"
        if self.path:
            text += f", error-path ending in {self.path}"
        if self.info:
            name, _, value = self.info.partition("=")
            text += f", error-info <{name}>" + (f"{value}</{name}>" if value else "")
        if self.about:
            text += f", about {self.about} (error-path or bad-element)"
        return text


@dataclass(frozen=True)
class Data:
    """An rpc-reply with <data> in which every `present` local-name path exists (``a/b[k=v]/c``,
    optionally ``=value`` at the end) and no `absent` path does."""

    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"data with {p}" for p in self.present] + [f"data without {p}" for p in self.absent]
        return "; ".join(parts) or "rpc-reply <data>"


Expect = Ok | Error | Data


# ------------------------------------------------------------------ gNMI expectations


@dataclass(frozen=True)
class GnmiExpect:
    """A gRPC status (`codes`, names of `grpc.StatusCode`) and, for OK, words the response must
    contain (its text format).

    For an error, `control` describes a request that differs from the one sent only in its mistake
    and must succeed: a status code alone cannot tell "your path is wrong" from "which target?" or
    "who are you?" (INVALID_ARGUMENT and NOT_FOUND answer all of them), the control request can.
    `echo` checks gNMI 2.2.2.1: the responses' prefix.target is the one sent, and absent when none
    was sent."""

    codes: tuple[str, ...] = ("OK",)
    contains: tuple[str, ...] = ()
    control: str | None = None
    echo: bool = False

    def describe(self) -> str:
        text = "status " + " or ".join(self.codes)
        if self.codes != ("OK",):
            text += " with a message (gNMI 2.5)"
        if self.contains:
            text += "; response contains " + ", ".join(repr(c) for c in self.contains)
        if self.control:
            text += f"; control: {self.control} succeeds"
        if self.echo:
            text += "; prefix.target as sent (gNMI 2.2.2.1)"
        return text


# ------------------------------------------------------------------ ETSI GS QKD 014 expectations


@dataclass(frozen=True)
class KmeExpect:
    """An HTTP status among `codes` and, for 200, the object of the standard the answer must be
    (`answer`: "status", "keys"); for an error, the Error object (ETSI GS QKD 014 6.5: `message` a
    string, `details` a list of objects, nothing else) whose message names what was wrong (one of
    `about`, case-insensitive: the standard does not word messages, but one a developer can act on
    names the parameter). `control` describes a request that differs only in its mistake and must
    succeed, so that the error is about the mistake and not about who asks or whether key is
    left."""

    codes: tuple[int, ...] = (200,)
    answer: str = ""
    about: tuple[str, ...] = ()
    control: str | None = None

    def describe(self) -> str:
        text = "HTTP " + " or ".join(str(c) for c in self.codes)
        if self.answer:
            text += f" with the {self.answer} object"
        if self.codes != (200,):
            text += " with an Error object (message, details)"
        if self.about:
            text += " whose message names " + " or ".join(repr(a) for a in self.about)
        if self.control:
            text += f"; control: {self.control} succeeds"
        return text


# ------------------------------------------------------------------ RESTCONF expectations


@dataclass(frozen=True)
class RcExpect:
    """An HTTP answer of a RESTCONF server (RFC 8040): a status among `codes`; for an error status
    an ``ietf-restconf:errors`` body (RFC 8040 7.1) whose every error has error-type and error-tag,
    one of them among `tags`, its error-path ending in `error_path` when given. `media` is the
    Content-Type the answer must have (no parameters compared), `headers` names headers it must
    carry, `no_body` that it has none (HEAD, 204, 304). `present`/`absent` are paths in the JSON body
    (``a/b[k=v]/c``, optionally ``=value`` at the end; member names as RFC 7951 writes them, so a
    top-level name must be module-qualified: ``etsi-qkd-sdn-node:qkd_node``); for an XML body the
    same paths are matched on local names."""

    codes: tuple[int, ...] = (200,)
    tags: tuple[str, ...] = ()
    error_path: str | None = None
    media: str | None = None
    headers: tuple[str, ...] = ()
    no_body: bool = False
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    yang_patch: bool = False
    """The error body is a YANG Patch status (RFC 8072 2.3), not ietf-restconf:errors."""

    def describe(self) -> str:
        text = "HTTP " + " or ".join(str(c) for c in self.codes)
        if self.yang_patch:
            text += " with ietf-yang-patch:yang-patch-status"
        if self.tags:
            text += " with error-tag " + " or ".join(self.tags)
        if self.error_path:
            text += f", error-path ending in {self.error_path}"
        if self.media:
            text += f"; Content-Type {self.media}"
        if self.headers:
            text += "; headers " + ", ".join(self.headers)
        if self.no_body:
            text += "; no body"
        text += "".join(f"; body with {p}" for p in self.present)
        text += "".join(f"; body without {p}" for p in self.absent)
        return text


# ------------------------------------------------------------------ checks


@dataclass(frozen=True)
class Check:
    """One conformance check.

    `send` is what goes to the device: for NETCONF the body of an <rpc> (placeholders in braces
    are filled from the profile, see `profiles.Profile.values`), for gNMI a request in text form.
    `expect` is what the standard says must come back. `setup` requests run first and must succeed;
    `then` are follow-up exchanges, each with its own expectation (to see that an edit really took
    effect or really did not); `cleanup` runs whatever happened. `step` names a step function
    (registered in the runner of the protocol) for what one exchange cannot express; `params` are
    its arguments. `requires` lists capabilities (URI prefixes) the device must advertise, else the
    check is not applicable; `requires_absent` the reverse."""

    id: str
    clause: str
    title: str
    protocol: str
    send: str = ""
    expect: Any = field(default_factory=Ok)
    setup: tuple[str, ...] = ()
    then: tuple[tuple[str, Any], ...] = ()
    cleanup: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    requires_absent: tuple[str, ...] = ()
    profiles: frozenset[str] = ALL_PROFILES
    step: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    hostile: bool = False
    fresh_session: bool = False
    """Run on a session of its own (the check changes session state: locks, subscriptions)."""

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def expectation(self) -> str:
        parts = [self.expect.describe() if hasattr(self.expect, "describe") else str(self.expect)]
        parts += [f"then {e.describe()}" for _, e in self.then if hasattr(e, "describe")]
        return "; ".join(parts)


REGISTRY: dict[str, Check] = {}


def register(checks: Iterable[Check]) -> None:
    """Add checks to the registry; ids are unique across every table."""
    for check in checks:
        if check.id in REGISTRY:
            raise ValueError(f"duplicate conformance check id {check.id}")
        REGISTRY[check.id] = check


# ------------------------------------------------------------------ results


@dataclass
class Evidence:
    """What was sent and what came back, in order (each text truncated by the runner)."""

    exchanges: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, sent: str, received: str) -> None:
        self.exchanges.append((sent, received))

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass
class Outcome:
    """A verdict with its reason (what was wrong, or why the check does not apply)."""

    verdict: Verdict
    reason: str = ""


@dataclass
class Result:
    check: Check
    verdict: Verdict
    reason: str
    evidence: Evidence
    seconds: float

    def to_json(self) -> dict[str, Any]:
        c = self.check
        return {
            "id": c.id, "clause": c.clause, "title": c.title, "protocol": c.protocol,
            "hostile": c.hostile, "verdict": self.verdict.value, "reason": self.reason,
            "expected": c.expectation(), "seconds": round(self.seconds, 3),
            "evidence": {"exchanges": [{"sent": s, "received": r} for s, r in self.evidence.exchanges],
                         "notes": list(self.evidence.notes)},
        }


StepFn = TypeVar("StepFn", bound=Callable[..., Any])


class Steps(dict[str, Any], Generic[StepFn]):
    """Named steps a check's `step` refers to, for what one exchange cannot express; each
    runner keeps its own (the step functions take that runner's context)."""

    def step(self, name: str) -> Callable[[StepFn], StepFn]:
        def register(fn: StepFn) -> StepFn:
            self[name] = fn
            return fn
        return register

    async def run(self, protocol: str, ctx: Any, check: Check, ev: Evidence) -> Outcome:
        """Run the step `check` names; a check naming no step of this runner is an ERROR of the
        check (a catalogue slip), not a crash of the run."""
        fn = self.get(check.step or "")
        if fn is None:
            return Outcome(Verdict.ERROR, f"no {protocol} step {check.step!r}")
        outcome: Outcome = await fn(ctx, check, ev)
        return outcome
