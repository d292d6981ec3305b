"""``qstrata sae add|list|delete``: the client certificates of a KME's SAEs (ETSI GS QKD 014).

An SAE proves who it is to the KME with a client certificate from the agent's CA; its SAE ID is
the certificate's common name. ``sae add NAME`` writes ``STATE_DIR/sae/NAME.pem`` and
``NAME.key`` (mode 0600) and prints a curl line to try it. A certificate only says who the SAE is:
what it may do is configuration (qstrata-ss ``kme/saes`` and the ``qkd_app`` naming it), so
deleting a certificate file does not stop an SAE that kept a copy: remove it from ``kme/saes``.
Works with or without the agent running, on a QKD agent's state dir only (one with ``kme/``): a
network's folder, a switch's or a memory's is refused, naming the right one. Errors are one line on
stderr, exit code 2 for a wrong or missing folder, 1 for the rest.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from qstrata.agents.access.pki import ensure_ca, issue_client
from qstrata.agents.access.users import CREDENTIALS_FILE
from qstrata.agents.state_dir_cli import EXIT_OK, EXIT_USAGE, add_state_dir, fail

DIR = "sae"
KME_DIR = "kme"
"""What marks a QKD agent's state dir: its KME's journal lives there from the agent's first start
(agents/app.py); switches and memories have none, and a network's folder holds agents' folders."""
SAE_ID = re.compile(r"[!-.0-~]{1,255}")
"""qstrata-ss `sae-id`: printable ASCII without spaces or '/' (a path segment of the API)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sae`` command to the ``qstrata`` parser."""
    sae = subparsers.add_parser("sae", help="client certificates of the SAEs of a QKD agent's KME (ETSI GS QKD 014)")
    commands = sae.add_subparsers(dest="sae_command", required=True)
    p = commands.add_parser("add", help="issue a client certificate whose common name is the SAE ID")
    _common(p)
    p.add_argument("name", metavar="NAME", help="the SAE ID")
    p.add_argument("--replace", action="store_true", help="issue a new pair for an SAE that has one")
    p.set_defaults(func=cmd_sae_add)
    p = commands.add_parser("list", help="the SAEs with a certificate in the state dir")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sae_list)
    p = commands.add_parser("delete", help="delete an SAE's certificate and key files")
    _common(p)
    p.add_argument("name", metavar="NAME", help="the SAE ID")
    p.set_defaults(func=cmd_sae_delete)


def _common(p: argparse.ArgumentParser) -> None:
    add_state_dir(p, "QKD agent's state directory (holds its CA)")


def _fail(message: str) -> int:
    return fail("sae", message)


NETWORK_FILES = ("endpoints.json", "up.log", "up.lock")
"""What `qstrata up` writes into a network's folder, beside its agents' folders."""


def _qkd_agents_in(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if (d / KME_DIR).is_dir())
    except OSError:  # unreadable: nothing to suggest
        return []


def qkd_agent_problem(text: str) -> str | None:
    """Why the state dir `text` (as the user wrote it) is not a QKD agent's, or None if it is.
    The CA of any other folder (a network's gNMI gateway, a switch's) signs certificates no KME
    accepts, so `sae` refuses them instead of issuing one that can never work."""
    state_dir = Path(text)
    if (state_dir / KME_DIR).is_dir():
        return None
    if not state_dir.is_dir():
        return f"no state directory {text} (a QKD agent's, e.g. state/up/alice)"
    children = _qkd_agents_in(state_dir)
    if children and any((state_dir / f).exists() for f in NETWORK_FILES):
        return (f"{text} is a network's folder; an agent's is {state_dir / '<node>'}, e.g. "
                f"{state_dir / children[0].name}")
    if children:
        return (f"{text} is not a QKD agent's state directory (it holds some: "
                f"{', '.join(str(state_dir / d.name) for d in children[:3])})")
    siblings = _qkd_agents_in(state_dir.resolve().parent)
    others = f" (QKD agents here: {', '.join(str(state_dir.parent / d.name) for d in siblings)})" if siblings else ""
    if (state_dir / "datastore").is_dir():
        return f"{text} is the folder of an agent that is not a QKD agent: only QKD agents have a KME{others}"
    return (f"{text} is not a QKD agent's state directory (no {KME_DIR}/ in it: start `qstrata agent --kind qkd "
            f"--state-dir {text}` once){others}")


def sae_paths(state_dir: Path, name: str) -> tuple[Path, Path]:
    """Where the SAE's certificate and key are: ``STATE_DIR/sae/NAME.pem`` and ``NAME.key``."""
    return state_dir / DIR / f"{name}.pem", state_dir / DIR / f"{name}.key"


def issue_sae(state_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """Issue the SAE's certificate (common name `name`) and key (mode 0600) from the agent's CA
    into ``STATE_DIR/sae``, replacing any; returns (certificate, key, CA). Raises OSError."""
    cert, key = sae_paths(state_dir, name)
    cert.parent.mkdir(mode=0o700, exist_ok=True)
    ca, _, _ = ensure_ca(state_dir)
    issue_client(state_dir, name, cert, key)
    return cert, key, ca


def _kme_url(state_dir: Path) -> str:
    try:
        url = json.loads((state_dir / CREDENTIALS_FILE).read_text(encoding="utf-8")).get("kme")
    except (OSError, ValueError):
        url = None
    return url or "https://127.0.0.1:KME_PORT"


def cmd_sae_add(args: argparse.Namespace) -> int:
    """Issue the SAE's client certificate and key; print their paths and a curl line."""
    name, state_dir = args.name, Path(args.state_dir)
    if not SAE_ID.fullmatch(name) or name in (".", ".."):
        return _fail(f"{name!r} is not an SAE ID: 1-255 printable ASCII characters, no spaces, no '/'")
    if problem := qkd_agent_problem(args.state_dir):
        return fail("sae", problem, EXIT_USAGE)
    cert, key = sae_paths(state_dir, name)
    if (cert.exists() or key.exists()) and not args.replace:
        return _fail(f"SAE {name} has a certificate already ({cert}); --replace issues a new one")
    try:
        cert, key, ca = issue_sae(state_dir, name)
    except OSError as exc:
        return _fail(f"cannot write {cert.parent}: {exc.strerror or exc}")
    print(f"SAE {name}: certificate {cert}")
    print(f"SAE {name}: key         {key} (mode 0600)")
    print(f"CA of the KME:           {ca}")
    print("It may call the KME once qstrata-ss service-stratum/kme/saes lists it with this KME's kme-id and a "
          "qkd_app names it. Try:")
    print(f"  curl --cacert {ca} --cert {cert} --key {key} {_kme_url(state_dir)}/api/v1/keys/SLAVE_SAE_ID/status")
    return EXIT_OK


def cmd_sae_list(args: argparse.Namespace) -> int:
    """Every SAE certificate of the state dir, with its common name and expiry."""
    if problem := qkd_agent_problem(args.state_dir):
        return fail("sae", problem, EXIT_USAGE)
    folder = Path(args.state_dir) / DIR
    rows = []
    for cert in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
        try:
            parsed = x509.load_pem_x509_certificate(cert.read_bytes())
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read {cert}: {exc}")
        names = parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        rows.append({"sae_id": str(names[0].value) if names else "", "certificate": str(cert),
                     "key": str(cert.with_suffix(".key")), "not_after": parsed.not_valid_after_utc.isoformat()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print(f"no SAE certificates in {folder}")
        return EXIT_OK
    width = max(6, *(len(r["sae_id"]) for r in rows))
    print(f"{'SAE ID':{width}}  {'valid until':25}  certificate")
    for row in rows:
        print(f"{row['sae_id']:{width}}  {row['not_after']:25}  {row['certificate']}")
    return EXIT_OK


def cmd_sae_delete(args: argparse.Namespace) -> int:
    """Delete the SAE's certificate and key files."""
    if problem := qkd_agent_problem(args.state_dir):
        return fail("sae", problem, EXIT_USAGE)
    cert, key = sae_paths(Path(args.state_dir), args.name)
    if not SAE_ID.fullmatch(args.name) or not (cert.exists() or key.exists()):
        return _fail(f"no SAE {args.name!r} in {cert.parent}")
    cert.unlink(missing_ok=True)
    key.unlink(missing_ok=True)
    print(f"deleted SAE {args.name}'s certificate and key")
    print(f"note: remove {args.name} from qstrata-ss service-stratum/kme/saes too: a copy of the certificate "
          "stays valid until then", file=sys.stderr)
    return EXIT_OK
