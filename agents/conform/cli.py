"""`qstrata conform`: argument handling, one line per mistake (never a traceback), the console
table, the report files, and the exit code (0 all passed or not applicable, 1 a check failed or
could not be carried out, 2 usage or an unreachable device)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def register(sub: argparse._SubParsersAction) -> None:
    from .profiles import PROFILES

    p = sub.add_parser("conform", help="test a device's NETCONF/gNMI interface against ETSI GS QKD 015 and the RFCs",
                       description=cmd_conform.__doc__)
    p.add_argument("--netconf", type=_endpoint, metavar="HOST:PORT", help="NETCONF over SSH endpoint")
    p.add_argument("--gnmi", type=_endpoint, metavar="HOST:PORT", help="gNMI endpoint")
    p.add_argument("--user", help="user name (NETCONF and gNMI)")
    p.add_argument("--password", help="password (NETCONF and gNMI)")
    p.add_argument("--key", metavar="FILE", help="SSH private key for NETCONF")
    p.add_argument("--credentials", metavar="FILE",
                   help="a qstrata agent's credentials.json: user, password and gNMI CA from it")
    p.add_argument("--ca", metavar="FILE", help="CA certificate that signed the gNMI server's certificate")
    p.add_argument("--gnmi-insecure", action="store_true", help="gNMI in plain text (no TLS)")
    p.add_argument("--profile", default="etsi-qkd-015", help=f"one of {', '.join(PROFILES)} (default etsi-qkd-015)")
    p.add_argument("--report", action="append", default=[], metavar="FILE.json|FILE.html",
                   help="write a report (repeatable; the suffix picks the format)")
    p.add_argument("--hostile", action="store_true",
                   help="also run the hostile-input cases (framing, XML bombs, locks, resources): never against production")
    p.add_argument("--check", action="append", default=[], metavar="ID",
                   help="run only these checks (ids or id prefixes such as NC-EDIT; repeatable)")
    p.add_argument("--skip", action="append", default=[], metavar="ID",
                   help="do not run these checks (ids or id prefixes; repeatable), e.g. one that crashes the device")
    p.add_argument("--qkd-timeout", type=float, default=60.0, metavar="S",
                   help="seconds a QKD link may take to leave or reach ACTIVE (default 60)")
    p.add_argument("--list", action="store_true", help="list the checks of the profile and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print the summary line only")
    p.set_defaults(func=cmd_conform)


def cmd_conform(args: argparse.Namespace) -> int:
    """Test any device's management interface (ours or a vendor's) and report each check as pass,
    fail (with what was sent and received), not applicable or error. It creates and removes test
    entries and, on a QKD node, disables and re-enables a link: never run it against production."""
    from .gnmi_runner import GnmiEndpoint
    from .nc_client import NetconfEndpoint
    from .profiles import PROFILES
    from .report import console, write
    from .runner import RunOptions, run, select

    if args.profile not in PROFILES:
        return _usage(f"unknown profile {args.profile!r}; known: {', '.join(PROFILES)}")
    options = RunOptions(profile=args.profile, hostile=args.hostile, only=tuple(args.check), skip=tuple(args.skip),
                         qkd_timeout=args.qkd_timeout)
    if args.list:
        for c in select(options):
            print(f"{c.id:14} {c.protocol:8} {c.clause:32} {c.title}")
        return EXIT_OK
    if not args.netconf and not args.gnmi:
        return _usage("give --netconf HOST:PORT and/or --gnmi HOST:PORT")
    user, password, ca = args.user, args.password, args.ca
    if args.credentials:
        try:
            creds = json.loads(Path(args.credentials).read_text())
        except (OSError, ValueError) as exc:
            return _usage(f"cannot read {args.credentials}: {exc}")
        user = user or creds.get("username")
        password = password if password is not None else creds.get("password")
        ca = ca or creds.get("ca")
    if not user:
        return _usage("give --user (or --credentials FILE)")
    for path, what in ((args.key, "--key"), (ca, "--ca")):
        if path and not Path(path).is_file():
            return _usage(f"{what} {path}: no such file")
    if args.netconf:
        options.netconf = NetconfEndpoint(args.netconf[0], args.netconf[1], user, password, args.key)
    if args.gnmi:
        if not ca and not args.gnmi_insecure:
            return _usage("gNMI needs --ca FILE (TLS) or --gnmi-insecure")
        options.gnmi = GnmiEndpoint(args.gnmi[0], args.gnmi[1], user, password or "", ca, args.gnmi_insecure)
    for path in args.report:
        if not path.endswith((".json", ".html", ".htm")):
            return _usage(f"--report {path}: the name must end in .json or .html")

    from .gnmi_runner import GnmiUnavailable
    from .nc_client import NetconfUnavailable
    try:
        report = _run_loop(run(options))
    except (NetconfUnavailable, GnmiUnavailable) as exc:  # unreachable device, refused login
        print(f"qstrata conform: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a key file that does not parse, and the like: still one line
        print(f"qstrata conform: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = console(report)
    print(text if not args.quiet else text.splitlines()[-1])
    for path in args.report:
        try:
            write(report, path)
        except OSError as exc:
            print(f"qstrata conform: cannot write {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    n = report.counts()
    return EXIT_FAILED if n["fail"] or n["error"] else EXIT_OK


def _run_loop(coro):
    return asyncio.run(coro)


def _usage(message: str) -> int:
    print(f"qstrata conform: {message}", file=sys.stderr)
    return EXIT_USAGE
