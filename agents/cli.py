"""The `qstrata` command: one entry point for operators, CI and the testbed.

Sub-commands are small functions registered in `COMMANDS`; each returns the process exit code
and prints errors as one clear line (never a traceback) so scripts can rely on it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from qstrata.agents import sae_cli, users_cli
from qstrata.bindings.dataformat import DataFileError, read_data_file
from qstrata.bindings.schema import YANG_DIR, SchemaError, get_schema, module_files
from qstrata.bindings.validate import InvalidData
from qstrata.bindings.wire.argtypes import non_negative_float, port, positive_float, positive_int

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_DEVICE_LOST = 3
"""`qstrata agent`: the device went away (its world service stopped); a supervisor restarts it."""


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate instance documents (XML or JSON-IETF) against the qstrata modules."""
    try:
        get_schema()
    except SchemaError as exc:
        print(f"qstrata: {exc}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    for name in args.files:
        try:
            read_data_file(Path(name), max_bytes=args.max_size, config_only=args.config)
        except DataFileError as exc:
            print(f"{name}: {exc}")
            status = max(status, EXIT_INVALID)
        except InvalidData as exc:
            for issue in exc.issues:
                where = issue.path or "/"
                line = f" (line {issue.line})" if issue.line else ""
                print(f"{name}: {where}: {issue.message}{line}")
            status = max(status, EXIT_INVALID)
        else:
            if not args.quiet:
                print(f"{name}: valid")
    return status


def cmd_yang_tree(args: argparse.Namespace) -> int:
    """Print the schema tree of our modules as clients see them (pyang -f tree)."""
    files = module_files()
    names = args.modules or list(files)
    unknown = [n for n in names if n not in files]
    if unknown:
        print(f"qstrata: unknown module {', '.join(unknown)}; known: {', '.join(files)}", file=sys.stderr)
        return EXIT_USAGE
    pyang = Path(sys.executable).with_name("pyang")
    cmd = [str(pyang) if pyang.exists() else "pyang", "-f", "tree", "-p", str(YANG_DIR)]
    cmd += [str(files[n]) for n in names]
    result = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode:
        sys.stderr.write(result.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_yang_list(args: argparse.Namespace) -> int:
    """List the modules qstrata serves, with revision and namespace."""
    schema = get_schema()
    for name in schema.our_modules():
        print(f"{name}@{schema.revision(name) or '-'}\t{schema.namespace(name)}")
    return EXIT_OK


def cmd_agent(args: argparse.Namespace) -> int:
    """Run one agent in the foreground until SIGINT/SIGTERM."""
    import logging

    from qstrata.agents.app import AgentOptions, run_agent
    from qstrata.agents.devices.topology import TopologyError
    from qstrata.bindings.wire.runner import run_until_signalled

    world = None
    if args.kme_port is not None and args.kind != "qkd":
        print(f"qstrata agent: --kme-port: a {args.kind} agent has no KME (only qkd agents deliver keys)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.world is not None:
        from qstrata.agents.devices.remote.aio import parse_address

        clash = [flag for flag, given in (("--topology", args.topology), ("--seed", args.seed is not None),
                                          ("--no-twin", args.no_twin)) if given]
        if clash:
            print(f"qstrata agent: --world and {', '.join(clash)} exclude each other (the world service has the "
                  "topology, the seed and the twin)", file=sys.stderr)
            return EXIT_USAGE
        try:
            world = parse_address(args.world)
        except ValueError as exc:
            print(f"qstrata agent: --world: {exc}", file=sys.stderr)
            return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = AgentOptions(kind=args.kind, name=args.name, state_dir=Path(args.state_dir), listen=args.listen,
                           netconf_port=args.netconf_port, gnmi_port=args.gnmi_port,
                           gnmi_insecure=args.gnmi_insecure, gnmi_mtls=args.gnmi_mtls,
                           gnmi_hostnames=tuple(args.gnmi_hostname or ()),
                           topology=Path(args.topology) if args.topology else None, twin=not args.no_twin,
                           seed=args.seed, speed=args.speed, world=world, kme_port=args.kme_port,
                           restconf_port=args.restconf_port,
                           **_limit_options(args))

    try:
        if run_until_signalled(lambda stop: run_agent(options, stop)):
            print(f"qstrata agent: {args.name}: the device went away (see the log): stopped", file=sys.stderr)
            return EXIT_DEVICE_LOST
    except TopologyError as exc:  # raised before anything starts: every problem, one line each
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"qstrata agent: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaError as exc:
        print(f"qstrata agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _limit_arguments(p: argparse.ArgumentParser) -> None:
    """Login and session limits (see agents/access/guard.py and agents/netconf/ssh.py)."""
    g = p.add_argument_group("limits")
    g.add_argument("--login-timeout", type=non_negative_float, default=10.0, help="seconds to authenticate (default: 10)")
    g.add_argument("--hello-timeout", type=non_negative_float, default=30.0,
                   help="seconds for a NETCONF client to send its <hello> (default: 30; 0: none)")
    g.add_argument("--idle-timeout", type=non_negative_float, default=3600.0,
                   help="seconds before an idle connection is dropped (default: 3600; 0: never)")
    g.add_argument("--max-sessions", type=positive_int, default=64, help="authenticated sessions in total (default: 64)")
    g.add_argument("--max-sessions-per-user", type=positive_int, default=32, help="sessions per user (default: 32)")
    g.add_argument("--max-unauthenticated", type=positive_int, default=32,
                   help="connections still authenticating; beyond it new ones are dropped (default: 32)")
    g.add_argument("--ssh-legacy-client", dest="ssh_legacy_clients", action="append", default=[], metavar="PATTERN",
                   help="also offer SHA-1 SSH algorithms (ssh-rsa, diffie-hellman-group14-sha1, group exchange, "
                        "hmac-sha1) to clients whose SSH version matches PATTERN, e.g. 'JSCH-0.1.54' (repeatable)")


def _limit_options(args: argparse.Namespace) -> dict:
    options = {name: getattr(args, name) for name in ("login_timeout", "hello_timeout", "idle_timeout", "max_sessions",
                                                      "max_sessions_per_user", "max_unauthenticated")}
    return {**options, "ssh_legacy_clients": tuple(args.ssh_legacy_clients)}


def _world_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topology", help="topology YAML of the physical world (default: the built-in testbed)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the topology's)")
    p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall second")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default as ``(default: X)``, one style for every
    sub-command; a help text that explains its default itself says ``(default: ...)`` too.
    Flags and options without a default (None, off, empty) say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("(default" in text or not action.option_strings or action.nargs == 0
                or default is None or default is False or default == [] or default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """The `qstrata` parser; sub-command parsers are made of the same class, so they share its
    help formatter."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qstrata", description="Management plane for quantum network equipment.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help=cmd_validate.__doc__)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--config", action="store_true", help="configuration only: reject config false nodes")
    p.add_argument("--max-size", type=positive_int, default=64 * 1024 * 1024, help="largest file accepted, bytes")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=cmd_validate)

    yang = sub.add_parser("yang", help="YANG module tools").add_subparsers(dest="yang_command", required=True)
    p = yang.add_parser("tree", help=cmd_yang_tree.__doc__)
    p.add_argument("modules", nargs="*", metavar="MODULE")
    p.set_defaults(func=cmd_yang_tree)
    p = yang.add_parser("list", help=cmd_yang_list.__doc__)
    p.set_defaults(func=cmd_yang_list)

    p = sub.add_parser("agent", help=cmd_agent.__doc__, epilog=(
        "--world unix:PATH drives the node's twin in a world service (python -m qstrata.agents.devices.remote.service "
        "--socket PATH --topology FILE), shared with the agents of the other nodes, as `qstrata up --processes` does; "
        "the agent exits with code 3 when that service goes away."))
    p.add_argument("--kind", required=True, choices=("qkd", "memory", "switch"))
    p.add_argument("--name", required=True)
    p.add_argument("--state-dir", required=True, help="host key, users, credentials and datastores live here")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--netconf-port", type=port, default=830, help="NETCONF over SSH port (830 is standard; 0 picks one)")
    p.add_argument("--gnmi-port", type=port, default=None,
                   help="serve gNMI on this port (0 picks one; 9339 is IANA's); TLS with the agent's own CA")
    p.add_argument("--gnmi-insecure", action="store_true", help="serve gNMI in plain text instead of TLS")
    p.add_argument("--gnmi-mtls", action="store_true",
                   help="require gNMI client certificates signed by the agent's CA (a pair is written to the state dir)")
    p.add_argument("--gnmi-hostname", action="append", metavar="NAME",
                   help="another name for the gNMI server certificate (repeatable)")
    p.add_argument("--kme-port", type=port, default=None, metavar="N",
                   help="qkd agents: serve ETSI GS QKD 014 key delivery (HTTPS, mutual TLS with the agent's CA; "
                        "SAE certificates from `qstrata sae add`) on this port (0 picks one)")
    p.add_argument("--restconf-port", type=port, default=None, metavar="N",
                   help="serve RESTCONF (RFC 8040) on this port (0 picks one): HTTPS with the agent's CA, HTTP Basic "
                        "with the agent's users; its URL goes to credentials.json as `restconf`")
    _world_arguments(p)
    p.add_argument("--world", metavar="unix:PATH", default=None,
                   help="the node's twin runs in the world service on this socket (default: in this process)")
    p.add_argument("--no-twin", action="store_true", help="serve an empty device instead of the node's twin")
    _limit_arguments(p)
    p.set_defaults(func=cmd_agent)

    users_cli.register(sub)
    sae_cli.register(sub)

    from qstrata.agents.testbed import cli as testbed_cli  # up (alias testbed) and demo
    testbed_cli.register(sub)
    from qstrata.agents.testbed import keys_cli  # keys: ETSI GS QKD 014 for people, against up's KMEs
    keys_cli.register(sub)

    from qstrata.agents.conform import cli as conform_cli  # qstrata conform
    conform_cli.register(sub)

    from qstrata.agents.devices.topology import problems  # collectors never import device code: handed over
    from qstrata.collectors import collect, query  # the collectors' commands register themselves
    collect.register(sub, check_topology=problems)
    query.register(sub)
    return parser



def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
