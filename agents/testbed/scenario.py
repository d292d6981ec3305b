"""Scripted disturbances: the world changes under the network, the way a real plant does.

A step lights (or dims) a classical channel -- Raman noise in every fibre it crosses -- bends a
fibre (extra loss spread over its length), or lets an intercept-resend eavesdropper attack a
fraction of a fibre's pulses (and later leave: a step with fraction 0). Times are simulated seconds after the controller is
done, so `--speed` shortens the whole story. Only the twins' plant is touched (in this process, or
in the world service with `--processes`); the management plane learns about it the way it would
in the field, through telemetry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from qstrata.agents.devices.plant_control import PlantControl

from .plan import ScenarioStep

log = logging.getLogger("qstrata.up.scenario")


async def apply_step(plant: PlantControl, step: ScenarioStep) -> str:
    """Make the change now; return what happened, in words."""
    if step.channel is not None and step.launch_power_dbm is not None:
        await plant.set_launch_power(step.channel, step.launch_power_dbm)
        what = f"classical channel {step.channel} at {step.launch_power_dbm:g} dBm"
    elif step.fibre is not None and step.eavesdropper is not None:
        await plant.set_eavesdropper(step.fibre, step.eavesdropper)
        what = (f"eavesdropper on fibre {step.fibre}: intercept-resend on {step.eavesdropper * 100:g}% of the pulses"
                if step.eavesdropper > 0 else f"the eavesdropper leaves fibre {step.fibre}")
    elif step.fibre is not None and step.extra_loss_db is not None:
        await plant.add_loss(step.fibre, step.extra_loss_db)
        what = f"fibre {step.fibre} bent: +{step.extra_loss_db:g} dB"
    else:
        return "nothing to do"
    return f"{step.text} ({what})" if step.text else what


async def run_scenario(plant: PlantControl, steps: tuple[ScenarioStep, ...], speed: float,
                       say: Callable[[str], None]) -> None:
    """Play the steps in order, in wall time (simulated time / speed) from now."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for step in steps:
        delay = start + step.at_s / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        say(f"scenario: {await apply_step(plant, step)}")
