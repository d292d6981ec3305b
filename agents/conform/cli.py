"""`qstrata conform`: argument handling, one line per mistake (never a traceback), the console
table, the report files, and the exit code (0 all passed or not applicable, 1 a check failed or
could not be carried out, 2 usage or an unreachable device)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from qstrata.bindings.wire import argtypes

if TYPE_CHECKING:
    from .endpoints import AgentTarget
    from .runner import RunOptions

KME_FLAGS = ("kme", "cert", "sae", "slave", "slave_kme", "slave_cert", "slave_key", "slave_ca")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def register(sub: argparse._SubParsersAction) -> None:
    from .model import KME_PROFILE
    from .profiles import PROFILES

    p = sub.add_parser("conform", help="test a device's NETCONF/gNMI/RESTCONF interface against ETSI GS QKD 015 and the RFCs, "
                                       "or a KME's key delivery API against ETSI GS QKD 014",
                       description=cmd_conform.__doc__)
    p.add_argument("--endpoints", metavar="FILE",
                   help="a running network's endpoints.json (`qstrata up` writes STATE_DIR/endpoints.json): "
                        "--agent's addresses, credentials, CA and gNMI target from it; flags given as well win")
    p.add_argument("--agent", metavar="NAME", help="the agent of --endpoints to test (default: its only one)")
    p.add_argument("--netconf", type=_endpoint, metavar="HOST:PORT",
                   help="NETCONF over SSH endpoint (default: the --agent's)")
    p.add_argument("--gnmi", type=_endpoint, metavar="HOST:PORT", help="gNMI endpoint (default: the --agent's)")
    p.add_argument("--restconf", metavar="URL",
                   help="RESTCONF base URL, https://HOST:PORT (default: the --agent's); alone, only the RESTCONF "
                        "(RC-) checks run; HTTP Basic with --user/--password, the server's CA from --ca")
    p.add_argument("--target", metavar="NAME",
                   help="gNMI prefix.target of every request: the agent's name where one port serves several, "
                        "as `qstrata up`'s does (default: none, or the --agent's)")
    p.add_argument("--user", help="user name, NETCONF and gNMI (default: from --credentials)")
    p.add_argument("--password", help="password, NETCONF and gNMI (default: from --credentials)")
    p.add_argument("--key", metavar="FILE", help="SSH private key for NETCONF; with --kme: the SAE's private key")
    p.add_argument("--credentials", metavar="FILE",
                   help="a qstrata agent's credentials.json: user, password and gNMI CA from it "
                        "(default: the --agent's)")
    p.add_argument("--ca", metavar="FILE", help="CA certificate that signed the gNMI server's certificate "
                                                 "(default: the --agent's, else from --credentials); with --kme: "
                                                 "the KME's (default: the --agent's KME's)")
    k = p.add_argument_group(f"key delivery (--profile {KME_PROFILE}: ETSI GS QKD 014 over HTTPS)")
    k.add_argument("--kme", metavar="URL", help="the KME's base URL, https://HOST:PORT (default: the --agent's KME); "
                                                f"implies --profile {KME_PROFILE}")
    k.add_argument("--cert", metavar="FILE", help="the master SAE's client certificate (its SAE ID is the common "
                                                  "name), with --key")
    k.add_argument("--sae", metavar="SAE_ID", help="with --endpoints: the master SAE whose certificate `qstrata sae "
                                                   "add` wrote for the --agent (default: its only one)")
    k.add_argument("--slave", metavar="SAE_ID", help="the slave SAE (default: the master itself, an SAE paired "
                                                     "with itself)")
    k.add_argument("--slave-cert", metavar="FILE", help="the slave's certificate, for dec_keys (default: with "
                                                        "--endpoints, the one `qstrata sae add` wrote)")
    k.add_argument("--slave-key", metavar="FILE", help="the slave's private key")
    k.add_argument("--slave-kme", metavar="URL", help="the slave's KME (default: the same KME, or with --endpoints "
                                                      "the KME the slave's certificate comes from)")
    k.add_argument("--slave-ca", metavar="FILE", help="the slave's KME's CA (default: --ca)")
    p.add_argument("--gnmi-insecure", action="store_true",
                   help="gNMI in plain text, no TLS (default: TLS, unless the --agent's gNMI has no CA)")
    p.add_argument("--restconf-insecure", action="store_true",
                   help="do not verify the RESTCONF server's certificate (the password is still sent; default: "
                        "verify it against --ca, else the `restconf_ca` of --credentials)")
    p.add_argument("--profile", metavar="PROFILE",
                   help=f"one of {', '.join([*PROFILES, KME_PROFILE])} (default: etsi-qkd-015, or the one of the "
                        f"--agent's kind); --kme implies {KME_PROFILE}")
    p.add_argument("--report", action="append", default=[], metavar="FILE.json|FILE.html",
                   help="write a report; repeatable, the suffix picks the format")
    p.add_argument("--hostile", action="store_true",
                   help="also run the hostile-input cases (framing, XML bombs, locks, resources): never against production")
    p.add_argument("--check", action="append", default=[], metavar="ID",
                   help="run only these checks: ids or id prefixes such as NC-EDIT; repeatable (default: all of "
                        "the profile)")
    p.add_argument("--skip", action="append", default=[], metavar="ID",
                   help="do not run these checks (ids or id prefixes; repeatable), e.g. one that crashes the device")
    p.add_argument("--qkd-timeout", type=argtypes.positive_float, default=60.0, metavar="S",
                   help="seconds a QKD link may take to leave or reach ACTIVE (default: 60)")
    p.add_argument("--list", action="store_true", help="list the checks of the profile and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print the summary line only")
    p.set_defaults(func=cmd_conform)


def cmd_conform(args: argparse.Namespace) -> int:
    """Test any device's management interface (ours or a vendor's) and report each check as pass,
    fail (with what was sent and received), not applicable or error. It creates and removes test
    entries and, on a QKD node, disables and re-enables a link: never run it against production.
    Against a network of `qstrata up`: --endpoints STATE_DIR/endpoints.json --agent NAME. A KME's
    key delivery API: --profile etsi-qkd-014 --kme URL --cert FILE --key FILE --ca FILE."""
    from .endpoints import EndpointsError, agent_target
    from .kme_runner import KmeUnavailable
    from .model import KME_PROFILE
    from .profiles import PROFILES
    from .report import console, write
    from .runner import RunOptions, check_prefixes, run, select, unknown_checks

    agent = None
    if args.endpoints:
        try:
            agent = agent_target(args.endpoints, args.agent)
        except EndpointsError as exc:
            return _usage(str(exc))
    elif args.agent:
        return _usage("--agent needs --endpoints FILE (the network's endpoints.json, e.g. state/up/endpoints.json)")
    profile = args.profile or (KME_PROFILE if args.kme else agent.profile if agent and agent.profile else "etsi-qkd-015")
    if profile not in (*PROFILES, KME_PROFILE):
        return _usage(f"unknown profile {profile!r}; known: {', '.join([*PROFILES, KME_PROFILE])}")
    if profile != KME_PROFILE and (given := [f for f in KME_FLAGS if getattr(args, f)]):
        return _usage(f"--{given[0].replace('_', '-')} is for --profile {KME_PROFILE} (a KME's key delivery API)")
    options = RunOptions(profile=profile, hostile=args.hostile, only=tuple(args.check), skip=tuple(args.skip),
                         qkd_timeout=args.qkd_timeout)
    if unknown := unknown_checks(options):
        return _usage(f"unknown check id {unknown}; ids start with {', '.join(check_prefixes(options))} "
                      "(--list shows them)")
    if args.list:
        for c in select(options):
            print(f"{c.id:14} {c.protocol:8} {c.clause:32} {c.title}")
        return EXIT_OK
    problem = _kme_options(args, agent, options) if profile == KME_PROFILE else _connect_options(args, agent, options)
    if problem:
        return _usage(problem)
    for path in args.report:
        if not path.endswith((".json", ".html", ".htm")):
            return _usage(f"--report {path}: the name must end in .json or .html")

    from qstrata.bindings.wire.netconf_client import NetconfUnavailable

    from .gnmi_runner import GnmiUnavailable
    from .rc_runner import RcUnavailable
    try:
        report = asyncio.run(run(options))
    except (NetconfUnavailable, GnmiUnavailable, KmeUnavailable, RcUnavailable) as exc:  # unreachable device, refused login
        print(f"qstrata conform: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a key file that does not parse, and the like: still one line
        print(f"qstrata conform: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if options.restconf and options.restconf.ca is None and options.restconf.url.startswith("https://"):
        print("qstrata conform: warning: --restconf-insecure: the RESTCONF server's certificate was not "
              "verified, and the password went to whoever answered", file=sys.stderr)
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


def _connect_options(args: argparse.Namespace, agent: AgentTarget | None, options: RunOptions) -> str | None:
    """Fill `options.netconf` and `options.gnmi` from the flags and, for what they leave out, the
    --agent's entry of endpoints.json and its credentials.json; return a usage problem or None."""
    from qstrata.bindings.wire.netconf_client import NetconfEndpoint

    from .gnmi_runner import GnmiEndpoint
    from .rc_runner import RcEndpoint

    netconf = args.netconf or (agent.netconf if agent else None)
    gnmi = args.gnmi or (agent.gnmi if agent else None)
    restconf = args.restconf or (agent.restconf if agent else None)
    if args.restconf and not agent and not args.netconf and not args.gnmi:
        netconf = gnmi = None  # a RESTCONF-only run
    if not netconf and not gnmi and not restconf:
        return ("give --netconf HOST:PORT, --gnmi HOST:PORT and/or --restconf URL "
                "(or --endpoints FILE --agent NAME)")
    credentials = args.credentials or (agent.credentials if agent else None)
    user, password, ca = args.user, args.password, args.ca or (agent.ca if agent else None)
    restconf_ca = None  # the agent's own CA: not the gNMI `ca` where a gateway serves its gNMI
    # the file names the CA its agent's gNMI certificate chains to; none there means plain text
    insecure = args.gnmi_insecure or (agent is not None and agent.gnmi is not None and not ca)
    if credentials:
        try:
            creds = json.loads(Path(credentials).read_text())
            if not isinstance(creds, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            return f"cannot read {credentials}: {exc}"
        user = user or creds.get("username")
        password = password if password is not None else creds.get("password")
        ca = ca or creds.get("ca")
        restconf_ca = creds.get("restconf_ca")
    if not user:
        return "give --user (or --credentials FILE)"
    for path, what in ((args.key, "--key"), (None if insecure else ca, "--ca" if args.ca else "the gNMI CA")):
        if path and not Path(path).is_file():
            return f"{what} {path}: no such file"
    if restconf:
        if not restconf.startswith(("https://", "http://")):
            return f"--restconf {restconf}: expected a URL, https://HOST:PORT"
        # a URL from the agent's entry goes with the CA its entry names; a URL given by hand with --ca
        rc_ca = (agent.restconf_ca if agent and not args.restconf else None) or args.ca or restconf_ca or ca
        if args.restconf_insecure:
            rc_ca = None
        elif restconf.startswith("https://") and not rc_ca:
            return "RESTCONF over HTTPS needs --ca FILE (the CA of its certificate) or --restconf-insecure"
        elif rc_ca and not Path(rc_ca).is_file():
            return f"the RESTCONF CA {rc_ca}: no such file"
        options.restconf = RcEndpoint(restconf, user, password or "", rc_ca)
    if netconf:
        options.netconf = NetconfEndpoint(netconf[0], netconf[1], user, password, args.key)
    if gnmi:
        if not ca and not insecure:
            return "gNMI needs --ca FILE (TLS) or --gnmi-insecure"
        target = args.target if args.target is not None else (agent.target if agent else "")
        options.gnmi = GnmiEndpoint(gnmi[0], gnmi[1], user, password or "", ca, insecure, target=target)
    return None


def _kme_options(args: argparse.Namespace, agent: AgentTarget | None, options: RunOptions) -> str | None:
    """Fill `options.kme` from the flags and, for what they leave out, the --agent's KME in
    endpoints.json (its URL, CA and the SAE certificates `qstrata sae add` wrote); return a usage
    problem or None."""
    from .endpoints import EndpointsError, kme_of_sae
    from .kme_runner import KmeEndpoint, SaeAccess

    kme = agent.kme if agent else None
    if agent and not kme and not args.kme:
        return f"agent {agent.name} has no KME in {args.endpoints} (only QKD agents have one)"
    url = args.kme or (kme.url if kme else None)
    if not url:
        return "give --kme URL (the KME's https://HOST:PORT) or --endpoints FILE --agent NAME"
    if not url.startswith("https://"):
        return f"--kme {url}: the key delivery API is served over HTTPS (https://HOST:PORT)"
    cert, key, ca = args.cert, args.key, args.ca or (kme.ca if kme else None)
    if not cert and kme:
        saes = kme.saes()
        sae = args.sae or (saes[0] if len(saes) == 1 else None)
        if sae is None:
            return (f"pick the master SAE with --sae ({', '.join(saes)})" if saes else
                    f"no SAE certificate in {kme.sae_dir}: `qstrata sae add NAME --state-dir ...` writes one")
        if not kme.sae(sae):
            return f"no certificate of SAE {sae} in {kme.sae_dir}; there: {', '.join(saes) or 'none'}"
        cert, key = kme.sae(sae)  # type: ignore[misc]
    if not (cert and key):
        return "give the master SAE's --cert FILE and --key FILE (or --endpoints FILE --agent NAME [--sae SAE_ID])"
    if not ca:
        return "give --ca FILE: the CA of the KME's certificate"
    slave_url, slave_cert, slave_key, slave_ca = args.slave_kme, args.slave_cert, args.slave_key, args.slave_ca
    if args.slave and not slave_cert and args.endpoints:
        try:
            home = kme_of_sae(args.endpoints, args.slave)
        except EndpointsError as exc:
            return str(exc)
        if home is not None:
            slave_cert, slave_key = home.sae(args.slave)  # type: ignore[misc]
            slave_url, slave_ca = slave_url or (home.url if home.url != url else None), slave_ca or home.ca
    if bool(slave_cert) != bool(slave_key):
        return "give both --slave-cert FILE and --slave-key FILE"
    for path, what in ((cert, "--cert"), (key, "--key"), (ca, "--ca"), (slave_cert, "--slave-cert"),
                       (slave_key, "--slave-key"), (slave_ca, "--slave-ca")):
        if path and not Path(path).is_file():
            return f"{what} {path}: no such file"
    options.kme = KmeEndpoint(SaeAccess(url, cert, key, ca), args.slave, SaeAccess(slave_url, slave_cert, slave_key, slave_ca))
    return None


def _usage(message: str) -> int:
    print(f"qstrata conform: {message}", file=sys.stderr)
    return EXIT_USAGE
