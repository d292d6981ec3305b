"""`qstrata collect`: run a telemetry collector in the foreground until SIGINT/SIGTERM.

    qstrata collect --targets FILE [--store sqlite:PATH|none] [--prometheus HOST:PORT] [--nats URL]
                    [--gnmi-port N [--gnmi-listen HOST] [--gnmi-insecure] [--state-dir DIR]]
                    [--from-nats URL] [--instance NAME] [--dashboard HOST:PORT [--topology FILE]]

FILE is the collector's YAML (targets, alarm rules, actions, store retention) or a testbed's
endpoints.json; it is watched and re-applied while running. Bad input (an invalid file, an
unreachable NATS server, a store that cannot be opened) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from qstrata.bindings.wire.argtypes import port

if TYPE_CHECKING:
    from .dashboard.graph import Check

EXIT_OK, EXIT_USAGE = 0, 2


def register(subparsers: argparse._SubParsersAction, check_topology: Check | None = None) -> None:
    """Add `collect` to the `qstrata` command (called from qstrata.agents.cli, which hands over the
    topology format's own check: a --topology file with problems is refused before anything
    starts)."""
    p = subparsers.add_parser("collect", help="run a telemetry collector (gNMI targets or a NATS stream -> "
                                              "store, Prometheus, NATS)")
    p.add_argument("--targets", metavar="FILE", help="collector YAML (targets, alarms, actions) or endpoints.json")
    p.add_argument("--store", default="sqlite:collector.db", help="embedded store, sqlite:PATH, or 'none' "
                                                                 "(default: sqlite:collector.db)")
    p.add_argument("--prometheus", metavar="HOST:PORT", help="serve a Prometheus exposition endpoint")
    p.add_argument("--dashboard", metavar="HOST:PORT", help="serve the web dashboard (e.g. 127.0.0.1:8765; port 0: "
                                                           "a free one)")
    p.add_argument("--topology", metavar="FILE", help="the network the dashboard draws: a topology YAML or a "
                                                      "testbed's endpoints.json (default: the one --targets names)")
    p.add_argument("--nats", metavar="URL", help="publish to NATS JetStream; instances using the same NATS "
                                                 "share the targets")
    p.add_argument("--gnmi-port", type=port, help="serve the telemetry as a gNMI target on this port (0: a free "
                                                 "one); TLS with the collector's own CA")
    p.add_argument("--gnmi-listen", default="127.0.0.1", metavar="HOST", help="address of --gnmi-port "
                                                                              "(default: 127.0.0.1)")
    p.add_argument("--gnmi-insecure", action="store_true", help="serve northbound gNMI in plain text")
    p.add_argument("--state-dir", default="collector-state", help="users, credentials.json and the gNMI CA of "
                                                                  "the northbound side (default: collector-state)")
    p.add_argument("--from-nats", metavar="URL", help="consume a NATS JetStream stream written by collectors")
    p.add_argument("--durable", default="qstrata-store", help="durable consumer name for --from-nats")
    p.add_argument("--instance", help="this instance's name (default: host-pid)")
    p.add_argument("--no-share", action="store_true", help="with --nats: collect every target, do not take leases")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=cmd_collect, check_topology=check_topology)


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _fail(message: str) -> int:
    print(f"qstrata collect: {message}", file=sys.stderr)
    return EXIT_USAGE


def _host_port(text: str, option: str = "--prometheus", default_host: str = "0.0.0.0") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{option} wants HOST:PORT, got {text!r}")
    return host.strip("[]") or default_host, int(port)


def _topology_of(args: argparse.Namespace):
    """--topology, else the endpoints.json given as --targets (it names its topology file)."""
    from .dashboard.graph import load_graph

    check = getattr(args, "check_topology", None)
    if args.topology:
        return load_graph(args.topology, check)
    if args.targets and args.targets.endswith(".json"):
        import json
        from pathlib import Path

        try:
            doc = json.loads(Path(args.targets).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(doc, dict) and doc.get("topology"):
            return load_graph(args.targets, check)
    return None


def cmd_collect(args: argparse.Namespace) -> int:

    from qstrata.bindings.wire.runner import run_until_signalled

    from .app import CollectOptions, default_instance, run_collector
    from .config import ConfigError, load
    from .dashboard.graph import GraphError
    from .natsutil import NatsUnavailable
    from .store import StoreError, parse_store_url

    if not args.targets and not args.from_nats:
        return _fail("give --targets FILE (agents to collect) or --from-nats URL (a stream to read)")
    if args.nats and args.from_nats and args.nats == args.from_nats:
        return _fail("--nats and --from-nats name the same server: the collector would re-publish what it reads")
    try:
        config = load(args.targets) if args.targets else None
        store = None if args.store in ("none", "") else args.store
        if store:
            parse_store_url(store)
        prometheus = _host_port(args.prometheus) if args.prometheus else None
        dashboard = _host_port(args.dashboard, "--dashboard", "127.0.0.1") if args.dashboard else None
        topology = _topology_of(args) if dashboard else None
    except ConfigError as exc:
        return _fail(str(exc))
    except GraphError as exc:
        for line in exc.issues:  # the topology's problems, each on its own line like qstrata up's
            print(line, file=sys.stderr)
        return EXIT_USAGE if exc.issues else _fail(str(exc))
    except (StoreError, ValueError) as exc:
        return _fail(str(exc))
    # Log records of the start-up are held back: if the start fails, the one line below is all the
    # operator sees; once the collector runs they are written, then logging goes straight out.
    root = logging.getLogger()
    held = _Held()
    root.addHandler(held)
    root.setLevel(args.log_level.upper())

    def started(collector) -> None:
        root.removeHandler(held)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.addHandler(handler)
        for record in held.records:
            handler.handle(record)
        logging.getLogger("qstrata.collectors").info("%s started", collector.describe())
        if not collector.config.targets and not args.from_nats:
            logging.getLogger("qstrata.collectors").warning(
                "%s names no target: nothing is collected until targets are added to it (it is watched)",
                args.targets or "the configuration")

    options = CollectOptions(config=config, store=store, prometheus=prometheus, nats=args.nats,
                             from_nats=args.from_nats, durable=args.durable, gnmi_port=args.gnmi_port,
                             gnmi_host=args.gnmi_listen, gnmi_insecure=args.gnmi_insecure, state_dir=args.state_dir,
                             instance=args.instance or default_instance(), share_targets=not args.no_share,
                             dashboard=dashboard, topology=topology)

    try:
        run_until_signalled(lambda stop: run_collector(options, stop, on_started=started))
    except NatsUnavailable as exc:
        return _fail(str(exc))
    except StoreError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if getattr(exc, "filename", None) else ""))
    return EXIT_OK
