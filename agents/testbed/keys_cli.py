"""``qstrata keys status|get|get-by-id``: ETSI GS QKD 014 key delivery for people.

    qstrata keys status SLAVE --sae NAME            # the pair's Status (this SAE the master)
    qstrata keys get SLAVE --sae NAME [--number N] [--size BITS]
    qstrata keys get-by-id MASTER KEY_ID... --sae NAME   # as the slave: the keys MASTER got

It reads a running network's ``endpoints.json`` (``--state-dir``, default ``state/up``, or
``--endpoints``) for each KME's URL, CA and SAE folder, and calls as SAE NAME with the
certificate in that folder (written by ``qstrata sae add`` or by ``qstrata up`` for its own
application), at the KME whose folder holds it (``--kme AGENT`` when several do). Figures and
keys are printed for people (keys in hex, or ``--encoding base64``); ``--format json`` prints the
KME's JSON objects (the Key container keeps base64, the standard's encoding, unless
``--encoding hex``). A refusal is one line on stderr with the KME's status and message, exit 1;
no network, no certificate, or an ambiguous SAE, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

from qstrata.bindings.wire.argtypes import positive_float

from .endpoints import ENDPOINTS_FILE
from .paths import shown

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
UNITS = {"key_size": "bits", "stored_key_count": "keys", "max_key_count": "keys", "max_key_per_request": "keys",
         "max_key_size": "bits", "min_key_size": "bits"}


class KeysError(Exception):
    """What to tell the user, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``keys`` to the ``qstrata`` command."""
    keys = subparsers.add_parser("keys", help="get keys from a running network's KMEs (ETSI GS QKD 014) as an SAE")
    commands = keys.add_subparsers(dest="keys_command", required=True)
    p = commands.add_parser("status", help="the Status of the pair (--sae the master, SLAVE the slave)")
    p.add_argument("slave", metavar="SLAVE", help="the slave SAE ID")
    _common(p)
    p.set_defaults(func=cmd_keys)
    p = commands.add_parser("get", help="new keys for the pair (enc_keys: --sae the master, SLAVE the slave)")
    p.add_argument("slave", metavar="SLAVE", help="the slave SAE ID")
    p.add_argument("--number", type=int, default=None, help="how many keys (default: 1, the KME's default)")
    p.add_argument("--size", type=int, default=None, help="bits per key, a multiple of 8 (default: the KME's "
                                                          "key_size)")
    p.add_argument("--additional-slave", action="append", default=[], metavar="SAE",
                   help="another slave SAE of the same KME as SLAVE (repeatable)")
    _common(p)
    p.set_defaults(func=cmd_keys)
    p = commands.add_parser("get-by-id", help="the keys a master got for this SAE (dec_keys: --sae the slave)")
    p.add_argument("master", metavar="MASTER", help="the master SAE ID")
    p.add_argument("key_ids", metavar="KEY_ID", nargs="+", help="key_IDs the master was given")
    _common(p)
    p.set_defaults(func=cmd_keys)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sae", metavar="NAME", help="the SAE to call as: its certificate NAME.pem and NAME.key in a "
                                                 "KME's SAE folder (endpoints.json agents[].kme.sae_dir)")
    p.add_argument("--kme", metavar="AGENT", help="the QKD agent whose KME to call (needed only when several "
                                                  "have a certificate for NAME)")
    p.add_argument("--state-dir", default="state/up", help="the running network's state directory (default: "
                                                           "state/up)")
    p.add_argument("--endpoints", help="endpoints.json (default: STATE_DIR/endpoints.json)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output (default: text)")
    p.add_argument("--encoding", choices=("hex", "base64"), default=None,
                   help="how keys are printed (default: hex for text, base64 for json)")
    p.add_argument("--timeout", type=positive_float, default=10.0, help="seconds to wait for the KME (default: "
                                                                         "10.0)")


def _endpoints(args: argparse.Namespace) -> dict[str, Any]:
    from .endpoints import EndpointsFileError, load_endpoints
    from .lock import holder

    path = Path(args.endpoints) if args.endpoints else Path(args.state_dir) / ENDPOINTS_FILE
    if not path.exists():
        if args.endpoints:
            raise KeysError(f"no such file: {path}")
        raise KeysError(f"no network is running in {args.state_dir} (no {path}): start one with "
                        "`bash scripts/dev.sh run`, or give --state-dir or --endpoints")
    if not args.endpoints and holder(Path(args.state_dir)) is None:  # a file left by a network that ended
        raise KeysError(f"no network is running in {args.state_dir} (its {ENDPOINTS_FILE} is left from one that "
                        "ended): start one with `bash scripts/dev.sh run`")
    try:
        return load_endpoints(path)
    except EndpointsFileError as exc:
        raise KeysError(str(exc)) from None


def identity(doc: dict[str, Any], sae: str | None, kme: str | None):
    """The `SaeIdentity` of SAE `sae` at the KME whose SAE folder holds its certificate."""
    from .kme_client import SaeIdentity

    agents = [a for a in doc.get("agents") or [] if isinstance(a, dict) and isinstance(a.get("kme"), dict)]
    if kme is not None:
        if not any(a.get("name") == kme for a in agents):
            raise KeysError(f"no KME {kme!r} in this network (KMEs: {', '.join(str(a.get('name')) for a in agents)})")
        agents = [a for a in agents if a.get("name") == kme]
    if not agents:
        raise KeysError("this network has no KME (no QKD agent serves ETSI GS QKD 014)")
    if not sae:
        found = [f"{p.stem} ({a['name']})" for a in agents for p in sorted(Path(a["kme"]["sae_dir"]).glob("*.pem"))]
        raise KeysError("which SAE are you? give --sae NAME" + (f" (certificates here: {', '.join(found)})" if found
                                                               else " (none has a certificate yet: qstrata sae add)"))
    if "/" in sae or sae in (".", ".."):
        raise KeysError(f"{sae!r} is not an SAE ID")
    holders = [a for a in agents if (Path(a["kme"]["sae_dir"]) / f"{sae}.pem").exists()
               and (Path(a["kme"]["sae_dir"]) / f"{sae}.key").exists()]
    if not holders:
        folders = ", ".join(shown(Path(a["kme"]["sae_dir"])) for a in agents)
        raise KeysError(f"no certificate for SAE {sae} in {folders}: issue one with "
                        f"`qstrata sae add {sae} --state-dir {shown(Path(agents[0]['kme']['sae_dir']).parent)}`")
    if len(holders) > 1:
        raise KeysError(f"SAE {sae} has a certificate at {', '.join(a['name'] for a in holders)}: say which KME "
                        "with --kme AGENT")
    agent = holders[0]
    folder = Path(agent["kme"]["sae_dir"])
    return SaeIdentity(sae, folder / f"{sae}.pem", folder / f"{sae}.key", Path(agent["kme"]["ca"]),
                       str(agent["kme"]["url"]))


def _encode(key: bytes, encoding: str) -> str:
    return key.hex() if encoding == "hex" else base64.b64encode(key).decode()


def _print_keys(keys: list[tuple[str, bytes]], args: argparse.Namespace) -> None:
    if args.format == "json":
        encoding = args.encoding or "base64"
        print(json.dumps({"keys": [{"key_ID": k, "key": _encode(v, encoding)} for k, v in keys]}, indent=2))
        return
    for key_id, key in keys:
        print(f"{key_id}  {_encode(key, args.encoding or 'hex')}")


def _print_status(status: dict[str, Any], args: argparse.Namespace) -> None:
    if args.format == "json":
        print(json.dumps(status, indent=2))
        return
    width = max(len(k) for k in status)
    for name, value in status.items():
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        unit = UNITS.get(name)
        print(f"{name:{width}}  {text}" + (f" {unit}" if unit else ""))


async def _call(args: argparse.Namespace, sae) -> None:
    from .kme_client import KmeClient

    client = KmeClient(sae, timeout=args.timeout)
    try:
        if args.keys_command == "status":
            _print_status(await client.status(args.slave), args)
        elif args.keys_command == "get":
            keys = await client.enc_keys(args.slave, args.number, args.size, tuple(args.additional_slave))
            _print_keys(keys, args)
            if args.format == "text" and keys:
                slaves = [args.slave, *args.additional_slave]
                print(f"{len(keys)} key(s) of {len(keys[0][1]) * 8} bits for {', '.join(slaves)}, who get them with: "
                      f"qstrata keys get-by-id {sae.sae_id} KEY_ID... --sae {slaves[0]}", file=sys.stderr)
        else:
            _print_keys(await client.dec_keys(args.master, list(args.key_ids)), args)
    finally:
        await client.close()


def cmd_keys(args: argparse.Namespace) -> int:
    """One ETSI GS QKD 014 call as the SAE; the answer on stdout, a refusal as one line."""
    from .kme_client import KmeRefusal

    try:
        sae = identity(_endpoints(args), args.sae, args.kme)
        asyncio.run(_call(args, sae))
    except KeysError as exc:
        print(f"qstrata keys: {exc}", file=sys.stderr)
        return exc.code
    except KmeRefusal as refusal:
        where = f"the KME at {sae.url}"
        print(f"qstrata keys: {where} refused ({refusal.status}): {refusal.message}" if refusal.status
              else f"qstrata keys: {refusal.message}", file=sys.stderr)
        return EXIT_REFUSED
    except BrokenPipeError:  # the reader of stdout is gone (`| head`): as every command, not a failure
        raise
    except (OSError, ValueError) as exc:  # the certificate files could not be read
        print(f"qstrata keys: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK
