"""`qstrata up` (alias `qstrata testbed`) and `qstrata demo`.

    qstrata up [--topology FILE] [--state-dir DIR] [--speed X] [--processes] [--bare] [--duration S]
               [--dashboard-port N | --no-dashboard] [--eavesdropper FIBRE:FRACTION[@START[-STOP]]]...

A bad topology is every problem on stderr as ``FILE: YAML.PATH: what is wrong`` and exit code 2,
before anything starts. Logs go to STATE_DIR/up.log; the terminal shows the status table.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from qstrata.bindings.wire.argtypes import port, positive_float

from .paths import shown

EXIT_OK, EXIT_USAGE = 0, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `up`, its alias `testbed`, and `demo` to the `qstrata` command."""
    for name in ("up", "testbed"):
        p = subparsers.add_parser(name, help="run a whole emulated quantum network until Ctrl-C"
                                  + (" (alias of up)" if name == "testbed" else ""))
        p.add_argument("--topology", help="network topology YAML (default: the built-in network, "
                                          "agents/devices/topologies/network.yaml)")
        p.add_argument("--state-dir", default=f"state/{name}", help="per-agent state, endpoints.json, logs, store")
        p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall second")
        p.add_argument("--seed", type=int, default=None, help="random seed (default: the topology's)")
        p.add_argument("--processes", action="store_true", help="one process per agent (default: all in one)")
        p.add_argument("--bare", action="store_true", help="start unconfigured: no built-in controller, no scenario")
        p.add_argument("--duration", type=positive_float, default=None, help="stop after this many seconds")
        p.add_argument("--eavesdropper", action="append", default=[], metavar="FIBRE:FRACTION[@START[-STOP]]",
                       help="an intercept-resend eavesdropper on FIBRE attacking FRACTION of its pulses (0..1 or "
                            "N%%), from START to STOP simulated seconds after the controller is done (default: "
                            "from 0 on); a scenario event, repeatable")
        p.add_argument("--listen", default="127.0.0.1", help="address every agent listens on")
        p.add_argument("--base-port", type=port, default=0, help="first NETCONF port (0: free ports)")
        p.add_argument("--gnmi-insecure", action="store_true", help="serve gNMI in plain text instead of TLS")
        p.add_argument("--no-collector", action="store_true", help="do not run the collector")
        p.add_argument("--dashboard-port", type=port, default=8765, help="the collector's web dashboard on --listen "
                                                                        "(default: 8765, a free port if taken; 0: a "
                                                                        "free port)")
        p.add_argument("--no-dashboard", action="store_true", help="do not serve the web dashboard")
        p.add_argument("-q", "--quiet", action="store_true", help="no live status, only the start-up summary")
        p.set_defaults(func=cmd_up)
    p = subparsers.add_parser("demo", help="walk through a running network as an SDN controller would "
                                           "(ncclient + pygnmi; reads STATE_DIR/endpoints.json)")
    p.add_argument("--state-dir", default="state/up", help="the running network's state directory")
    p.add_argument("--endpoints", help="endpoints.json (default: STATE_DIR/endpoints.json)")
    p.add_argument("--timeout", type=positive_float, default=120.0, help="seconds to wait for each step")
    p.set_defaults(func=cmd_demo)


def _log_to_file(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def _print_summary(network) -> None:
    print(f"qstrata up: network {network.topology.name} ({shown(network.topology_path)}), "
          f"speed {network.options.speed:g}x")
    for line in network.endpoint_lines():
        print(line)
    # one line per agent, every protocol's address: the summary must fit a 24-line terminal after
    # the status table's screen is gone (a table per protocol pushed the dashboard's line off it)
    print(f"{'agent':10} {'kind':7} {'NETCONF':16} {'gNMI':16} RESTCONF (HTTPS, Basic)")
    for e in network.endpoints():
        gnmi = f"{e.gnmi.host}:{e.gnmi.port}" if e.gnmi else "-"
        netconf = f"{e.netconf.host}:{e.netconf.port}"
        print(f"{e.name:10} {e.kind:7} {netconf:16} {gnmi:16} {e.restconf.url if e.restconf else '-'}")
    folders = {h.state_dir.parent for h in network.agents}
    where = f"{shown(folders.pop())}/<agent>" if len(folders) == 1 else "each agent's state folder"
    print(f"{'credentials':18} {where}/credentials.json (user, password, gNMI CA)")
    print(f"{'RESTCONF, KME CA':18} {where}/gnmi/ca.pem")
    kmes = [e for e in network.endpoints() if e.kme]
    if kmes:
        print(f"{'KME':10} {'ETSI GS QKD 014':30} SAE certificates")
        for e in kmes:
            print(f"{e.name:10} {e.kme.url:30} {shown(Path(e.kme.sae_dir))}")


def cmd_up(args: argparse.Namespace) -> int:
    """Run a whole emulated quantum network until Ctrl-C or SIGTERM."""
    import asyncio
    import os

    if args.processes:
        # Children are (re)started by fork + exec while the collector's gRPC threads run; gRPC's fork
        # handlers (for children that keep using gRPC without exec) would only print "skipping
        # fork() handlers" on the terminal. gRPC reads this when it is imported, below.
        os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

    from qstrata.agents.devices.topology import TopologyError
    from qstrata.bindings.schema import SchemaError
    from qstrata.bindings.wire.runner import run_until_signalled

    from .hosting import StartError
    from .lock import StateDirInUse, StateDirLock
    from .network import Network, UpOptions
    from .status import StatusDisplay

    options = UpOptions(topology=Path(args.topology) if args.topology else None, state_dir=Path(args.state_dir),
                        listen=args.listen, speed=args.speed, seed=args.seed, processes=args.processes,
                        bare=args.bare, base_port=args.base_port, collector=not args.no_collector,
                        eavesdroppers=tuple(args.eavesdropper),
                        gnmi_insecure=args.gnmi_insecure,
                        dashboard_port=None if args.no_dashboard else args.dashboard_port)
    try:
        display = StatusDisplay()
        network = Network(options, display)
    except TopologyError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_USAGE
    lock = StateDirLock(network.state_dir)
    try:
        lock.acquire()
    except StateDirInUse as exc:
        print(f"qstrata up: {shown(exc.state_dir)} is in use by another qstrata up "
              f"({f'pid {exc.pid}' if exc.pid else 'pid unknown'}): stop it first, or give another --state-dir",
              file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"qstrata up: cannot create {shown(network.state_dir)}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    _log_to_file(network.state_dir / "up.log")

    async def main(stop: asyncio.Event) -> int:
        try:
            await network.start()
        except BaseException:
            await network.stop()
            raise
        _print_summary(network)
        print("Ctrl-C stops the network." if not args.duration else f"running for {args.duration:g} s", flush=True)
        display.quiet = args.quiet
        try:
            await network.run(stop, args.duration)
        finally:
            display.close()
            await network.stop()
            if display.tty:
                print("qstrata up: stopped.", flush=True)
        return EXIT_OK

    try:
        return run_until_signalled(main)
    except StartError as exc:
        print(f"qstrata up: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"qstrata up: {exc.strerror or exc}", file=sys.stderr)
    except SchemaError as exc:
        print(f"qstrata up: {exc}", file=sys.stderr)
    return EXIT_USAGE


def cmd_demo(args: argparse.Namespace) -> int:
    """Walk through a running network as an SDN controller would (ncclient + pygnmi)."""
    import subprocess
    import time

    from .endpoints import ENDPOINTS_FILE
    from .lock import holder

    if not args.endpoints:  # the network of --state-dir: is one running there, and has it said where?
        state_dir = Path(args.state_dir)
        deadline = time.monotonic() + 30
        while holder(state_dir) is not None and not (state_dir / ENDPOINTS_FILE).exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)  # still starting: endpoints.json is written once everything serves
        if holder(state_dir) is None or not (state_dir / ENDPOINTS_FILE).exists():
            print(f"qstrata demo: no network is running in {args.state_dir}: start one with "
                  "`bash scripts/dev.sh run`" + ("" if args.state_dir == "state/up" else
                                                  f" (or `qstrata up --state-dir {args.state_dir}`)"),
                  file=sys.stderr)
            return EXIT_USAGE
    # pygnmi carries its own gNMI protobufs, which clash with the agents' already imported here:
    # the walk-through runs in a fresh interpreter.
    cmd = [sys.executable, "-m", "qstrata.agents.testbed.demo", "--state-dir", args.state_dir,
           "--timeout", str(args.timeout)] + (["--endpoints", args.endpoints] if args.endpoints else [])
    return subprocess.call(cmd)
