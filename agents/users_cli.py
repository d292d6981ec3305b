"""``qstrata user add|list|delete``: manage an agent's users from the command line.

Works on ``STATE_DIR/users.json`` directly (through `qstrata.agents.access.users`), so it
works whether the agent runs or not; a running agent sees the change at the next login.
Errors are one line on stderr with exit code 1 (2 for usage errors, from argparse).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from qstrata.agents.access.users import USERS_FILE, User, add_user, delete_user, load_users
from qstrata.agents.state_dir_cli import EXIT_OK, add_state_dir, fail

KNOWN_GROUPS = ("admin", "read-write", "read-only")
"""The groups `DEFAULT_NACM` has rules for."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``user`` command to the ``qstrata`` parser."""
    user = subparsers.add_parser("user", help="manage the users of an agent's state dir")
    commands = user.add_subparsers(dest="user_command", required=True)

    p = commands.add_parser("add", help="create a user (or replace one, with --replace)")
    _state_dir(p)
    p.add_argument("username")
    p.add_argument("--group", action="append", default=[], metavar="GROUP",
                   help=f"a group for access control; repeatable (defaults: {', '.join(KNOWN_GROUPS)})")
    p.add_argument("--authorized-key", action="append", default=[], metavar="KEY",
                   help="an OpenSSH public key line, or a file of them (e.g. ~/.ssh/id_ed25519.pub); repeatable")
    password = p.add_mutually_exclusive_group()
    password.add_argument("--password-stdin", action="store_true",
                          help="read the password from the first line of standard input")
    password.add_argument("--no-password", action="store_true",
                          help="key-only user (needs --authorized-key)")
    p.add_argument("--replace", action="store_true", help="replace an existing user of that name")
    p.set_defaults(func=cmd_user_add)

    p = commands.add_parser("list", help="list users, their groups and how they log in")
    _state_dir(p)
    p.add_argument("--json", action="store_true", help="machine-readable output (no password hashes)")
    p.set_defaults(func=cmd_user_list)

    p = commands.add_parser("delete", help="delete a user (its open sessions stay open)")
    _state_dir(p)
    p.add_argument("username")
    p.set_defaults(func=cmd_user_delete)


def _state_dir(p: argparse.ArgumentParser) -> None:
    add_state_dir(p, "agent's state directory (holds users.json)")


def _fail(message: str) -> int:
    return fail("user", message)


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a user; print a generated password once when none was given."""
    try:
        keys = _authorized_keys(args.authorized_key)
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
    if args.no_password and not keys:
        return _fail("--no-password needs at least one --authorized-key, or the user could never log in")
    fresh = not (Path(args.state_dir) / USERS_FILE).exists()
    generated = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            return _fail("no password on standard input")
    elif args.no_password:
        password = None
    else:
        password = generated = secrets.token_urlsafe(18)
    try:
        user = add_user(Path(args.state_dir), args.username, password, args.group, keys, replace=args.replace)
    except ValueError as exc:
        hint = " (use --replace to overwrite it)" if "already exists" in str(exc) else ""
        return _fail(f"{exc}{hint}")
    except OSError as exc:
        return _fail(f"cannot write {Path(args.state_dir) / USERS_FILE}: {exc.strerror or exc}")
    print(f"{'replaced' if args.replace else 'created'} user {user.username} "
          f"(groups: {', '.join(user.groups) or 'none'}; {_login_methods(user)})")
    if generated is not None:
        print(f"password: {generated}")
        print("This password is shown once; it is stored only as a hash.", file=sys.stderr)
    if fresh:
        print(f"note: {args.state_dir} had no {USERS_FILE}, so an agent started on it will not create "
              "the bootstrap admin user", file=sys.stderr)
    if not set(user.groups) & set(KNOWN_GROUPS):
        print(f"note: {user.username} is in none of the groups {', '.join(KNOWN_GROUPS)}; unless /nacm has rules "
              "for its groups, it may read but not write", file=sys.stderr)
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    """Print every user with its groups and login methods."""
    users = _existing_users(Path(args.state_dir))
    if isinstance(users, int):
        return users
    if args.json:
        print(json.dumps([{"username": u.username, "groups": list(u.groups), "password": u.password_hash is not None,
                           "authorized_keys": len(u.authorized_keys)} for u in users.values()], indent=2))
        return EXIT_OK
    width = max((len(name) for name in users), default=0)
    width = max(width, 4)
    print(f"{'user':{width}}  {'groups':24}  login")
    for user in users.values():
        print(f"{user.username:{width}}  {','.join(user.groups) or '-':24}  {_login_methods(user)}")
    return EXIT_OK


def cmd_user_delete(args: argparse.Namespace) -> int:
    """Delete a user."""
    state_dir = Path(args.state_dir)
    users = _existing_users(state_dir)
    if isinstance(users, int):
        return users
    if not delete_user(state_dir, args.username):
        return _fail(f"no user {args.username!r} in {state_dir / USERS_FILE}")
    print(f"deleted user {args.username}")
    if not any("admin" in u.groups for name, u in users.items() if name != args.username):
        print("note: no user of group admin is left", file=sys.stderr)
    return EXIT_OK


def _existing_users(state_dir: Path) -> dict[str, User] | int:
    if not (state_dir / USERS_FILE).is_file():
        return _fail(f"no {USERS_FILE} in {state_dir} (an agent creates it on first start)")
    try:
        return load_users(state_dir)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {state_dir / USERS_FILE}: {exc}")


def _authorized_keys(values: list[str]) -> list[str]:
    """Key lines given directly, or read from files (blank lines and # comments skipped)."""
    keys: list[str] = []
    for value in values:
        path = Path(value).expanduser()
        if len(value.split()) >= 2:  # "TYPE BASE64 [comment]": a key line
            keys.append(value)
        else:  # a file; a missing one is reported as such
            keys.extend(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                        if line.strip() and not line.lstrip().startswith("#"))
    return keys


def _login_methods(user: User) -> str:
    methods = []
    if user.password_hash is not None:
        methods.append("password")
    if user.authorized_keys:
        count = len(user.authorized_keys)
        methods.append(f"{count} key{'s' if count != 1 else ''}")
    return ", ".join(methods) or "cannot log in"
