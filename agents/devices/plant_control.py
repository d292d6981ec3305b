"""What an experimenter does to the plant from outside the network: light a classical channel,
bend a fibre, let an eavesdropper cut into one. The scripted disturbances of `qstrata up` go through it, so they reach the plant
wherever it lives: this process's world (`LocalPlant`) or the world service's
(`remote.client.RemotePlant`)."""

from __future__ import annotations

from typing import Protocol

from .plant import Plant


class PlantControl(Protocol):
    async def set_launch_power(self, channel: str, dbm: float) -> None:
        """A classical channel's transmitter now sends `dbm` (Raman noise in every fibre it crosses)."""
        ...

    async def add_loss(self, fibre: str, extra_db: float) -> None:
        """`extra_db` more loss on a fibre (a bend), spread over its length."""
        ...

    async def set_eavesdropper(self, fibre: str, fraction: float) -> None:
        """An intercept-resend eavesdropper on a fibre attacks `fraction` of its pulses (0: gone)."""
        ...


class LocalPlant:
    """The plant of a world in this process."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant

    async def set_launch_power(self, channel: str, dbm: float) -> None:
        self.plant.set_launch_power(channel, dbm)

    async def add_loss(self, fibre: str, extra_db: float) -> None:
        self.plant.add_loss(fibre, extra_db)

    async def set_eavesdropper(self, fibre: str, fraction: float) -> None:
        self.plant.set_eavesdropper(fibre, fraction)
