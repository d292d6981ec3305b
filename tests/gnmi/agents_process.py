"""A process hosting several twins' agents in one world with NETCONF and gNMI (what `qstrata
testbed` runs), for the gNMI tests: ``python agents_process.py STATE_DIR SPEED NAME...``.
Prints one JSON line {name: {"netconf": port, "gnmi": port, "state_dir": dir}} when ready and
runs until SIGTERM. ``extra["gnmi_bounds"]`` ({figure: value}) lowers the gNMI server's bounds on
connections (`qstrata.agents.gnmi.server`'s module figures, e.g. ``IDLE_TIMEOUT_S``) for a test
that wants them in seconds."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from qstrata.agents.app import Agent, AgentOptions
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY, load


async def main(state: Path, speed: float, names: list[str], extra: dict) -> None:
    level = extra.pop("log_level", None)  # the agents' log on stderr (the test's agents.log) from this level
    if level:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from qstrata.agents.gnmi import server as gnmi_server

    for figure, value in extra.pop("gnmi_bounds", {}).items():
        assert hasattr(gnmi_server, figure), figure
        setattr(gnmi_server, figure, value)
    topology = load(DEFAULT_TOPOLOGY)
    agents = []
    for name in names:
        kind = topology.nodes[name].kind
        agent = Agent(AgentOptions(kind=kind, name=name, state_dir=state / name, netconf_port=0, gnmi_port=0,
                                   topology=DEFAULT_TOPOLOGY, speed=speed, **extra))
        await agent.start()
        agents.append(agent)
    print(json.dumps({a.options.name: {"netconf": a.netconf_port, "gnmi": a.gnmi_port,
                                       "state_dir": str(a.options.state_dir)} for a in agents}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for agent in agents:
        await agent.stop()


if __name__ == "__main__":
    extra = json.loads(sys.argv[3])
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[4:], extra))
