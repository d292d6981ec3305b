"""Runs gNMI checks (placeholder until the gNMI profile lands)."""

from __future__ import annotations

from dataclasses import dataclass


class GnmiUnavailable(Exception):
    pass


@dataclass(frozen=True)
class GnmiEndpoint:
    host: str
    port: int
    username: str
    password: str
    ca: str | None = None
    insecure: bool = False


class GnmiContext:
    capabilities_text = ""

    @classmethod
    async def open(cls, ep, profile):
        return cls()

    async def close(self) -> None:
        return None


async def run_check(ctx, check, ev):
    raise NotImplementedError
