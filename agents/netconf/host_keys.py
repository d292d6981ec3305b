"""The NETCONF agent's SSH host keys: made on first start, kept in the state dir, loaded to serve.

Each agent keeps ``ssh_host_ed25519_key`` and ``ssh_host_rsa_key`` (3072 bits, for clients that
only know RSA) in its state dir, mode 0600, so a restart presents the same keys and clients'
``known_hosts`` stay valid.

Agents that share a process (``qstrata up``: hundreds of agents in one event loop) share one
generated pair, `SharedHostKeys`: the process generates each key once and writes that same key
into every new agent's state dir. Why shared and not lazy or parallel: generating an RSA 3072
key costs 0.1-1 s of CPU (random prime search), and loading one costs another ~0.1 s (the
key's consistency check), so 500 agents spent ~2 minutes of CPU on keys; two cores can at best
halve that, and a key made only when an old client first asks would move the wait into that
client's login. One pair per process costs one generation and one load however many agents
there are, and it protects nothing less: the agents of a process share one owner, one state
root and one memory. A single `qstrata agent` (one agent per process) still has keys of its
own, and so does each process of ``qstrata up --processes``.

Loading a key is cached by the file's bytes in `SharedHostKeys`, so a restart of a shared
network loads each distinct key once. A state dir written by an older release (a key per
agent) still works; it loads each of its keys as before.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import asyncssh
from qstrata.agents.access.users import write_private

__all__ = [
    "HOST_KEY_FILE",
    "HOST_KEY_FILES",
    "RSA_HOST_KEY_FILE",
    "RSA_KEY_BITS",
    "SharedHostKeys",
    "ensure_host_keys",
    "load_host_keys",
    "process_host_keys",
]

logger = logging.getLogger("qstrata.netconf")

HOST_KEY_FILE = "ssh_host_ed25519_key"
RSA_HOST_KEY_FILE = "ssh_host_rsa_key"
HOST_KEY_FILES = (HOST_KEY_FILE, RSA_HOST_KEY_FILE)
"""Offered in this order; each client picks the first algorithm it knows."""
RSA_KEY_BITS = 3072

_ALGORITHMS: dict[str, tuple[str, dict[str, int]]] = {
    HOST_KEY_FILE: ("ssh-ed25519", {}),
    RSA_HOST_KEY_FILE: ("ssh-rsa", {"key_size": RSA_KEY_BITS}),
}


def _generate(name: str) -> str:
    algorithm, options = _ALGORITHMS[name]
    return asyncssh.generate_private_key(algorithm, **options).export_private_key().decode("ascii")


class SharedHostKeys:
    """One host key pair for every agent of a process that uses it: each key generated at most
    once (on the first agent that lacks it), and each distinct key file loaded once.
    Thread-safe: agents bootstrap their state dirs in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generated: dict[str, str] = {}
        self._loaded: dict[bytes, asyncssh.SSHKey] = {}

    def private_key_text(self, name: str) -> str:
        """The process's key for file `name` (one of `HOST_KEY_FILES`), made on first use."""
        with self._lock:
            if name not in self._generated:
                self._generated[name] = _generate(name)
            return self._generated[name]

    def load(self, data: bytes) -> asyncssh.SSHKey:
        """The key in `data` (a private key file's bytes), parsed once per distinct content."""
        with self._lock:  # held while parsing, so agents starting together parse a new key once
            if data not in self._loaded:
                self._loaded[data] = asyncssh.import_private_key(data)
            return self._loaded[data]


@functools.cache
def process_host_keys() -> SharedHostKeys:
    """This process's shared host key pair."""
    return SharedHostKeys()


def ensure_host_keys(state_dir: Path, shared: SharedHostKeys | None = None) -> list[Path]:
    """Create the missing host keys (ed25519 and RSA, mode 0600): new ones, or `shared`'s when
    given; return their paths in the order they are offered. A key readable by others is used,
    with a warning."""
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = []
    for name in HOST_KEY_FILES:
        path = state_dir / name
        if not path.exists():
            write_private(path, shared.private_key_text(name) if shared is not None else _generate(name))
            logger.info("%s SSH host key %s", "wrote the process's" if shared is not None else "generated", path)
        elif path.stat().st_mode & 0o077:
            logger.warning("SSH host key %s is readable by group or others; chmod 600 it", path)
        paths.append(path)
    return paths


def load_host_keys(paths: list[Path], shared: SharedHostKeys | None = None) -> list[asyncssh.SSHKey | str]:
    """What `asyncssh.create_server` takes as ``server_host_keys``: with `shared`, each key
    parsed once per process (a key with a ``-cert.pub`` host certificate beside it is passed as
    its path, for asyncssh to pair them); without, the paths, as asyncssh loads them itself."""
    if shared is None:
        return [str(path) for path in paths]
    return [str(path) if Path(f"{path}-cert.pub").exists() else shared.load(path.read_bytes()) for path in paths]
