"""The SSH algorithms the NETCONF server offers: no SHA-1 and no modulus under 2048 bits.

asyncssh's defaults still offer what OpenSSH dropped years ago: ``diffie-hellman-group14-sha1``,
group exchange that hands out a 1024-bit modulus to a client asking for one, ``ssh-rsa`` (SHA-1)
host-key signatures and ``hmac-sha1``. ssh-audit counted 10 failures on the agent against 6 on
Debian's OpenSSH 9.2 with its defaults. The agent offers asyncssh's defaults without them (group
exchange goes whole: asyncssh's server ignores the client's minimum size, and the fixed 2048- to
8192-bit groups cover every client that has group exchange); RSA host keys stay, signed with
``rsa-sha2-256``/``rsa-sha2-512`` (OpenSSH 7.2+, paramiko 2.9+, JSch 0.1.55+).

A client too old for any of that (an embedded controller stuck on JSch 0.1.54, say) is named
with ``qstrata agent --ssh-legacy-client PATTERN``: connections whose SSH identification
matches the pattern (shell-style, against the software version after ``SSH-2.0-``, e.g.
``JSCH-0.1.54`` or ``'Cisco-*'``) are offered the legacy algorithms too, after the modern ones;
every other client still sees the strict list. The client's identification is known before the
server's KEXINIT leaves (asyncssh sends it on receiving the client version), which is where the
choice is made, per connection. The identification is the client's own claim, so naming a client
re-enables SHA-1 for anyone who claims to be it: name the oldest you must, and retire it.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh
from asyncssh.kex import get_default_kex_algs, get_kex_algs
from asyncssh.mac import get_default_mac_algs
from asyncssh.public_key import get_default_public_key_algs

__all__ = ["LEGACY_HOST_KEY_ALGS", "LEGACY_KEX_ALGS", "LEGACY_MAC_ALGS", "SshAlgorithms"]

log = logging.getLogger("qstrata.netconf")

LEGACY_KEX_ALGS = ("diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha256",
                   "diffie-hellman-group-exchange-sha1", "diffie-hellman-group1-sha1")
"""Offered only to a named legacy client, after every modern one (SHA-1, or group exchange,
which may hand out a 1024-bit modulus)."""
LEGACY_MAC_ALGS = ("hmac-sha1-etm@openssh.com", "hmac-sha1")
LEGACY_HOST_KEY_ALGS = ("ssh-rsa", "ssh-rsa-cert-v01@openssh.com")
"""RSA host keys signed with SHA-1; the same keys keep rsa-sha2-256 and rsa-sha2-512."""


def _strict(names: Sequence[bytes], legacy: Sequence[str]) -> tuple[str, ...]:
    drop = {n.encode() for n in legacy}
    return tuple(n.decode() for n in names
                 if n not in drop and b"sha1" not in n and b"gex" not in n and b"group-exchange" not in n)


KEX_ALGS = _strict(get_default_kex_algs(), LEGACY_KEX_ALGS)
MAC_ALGS = _strict(get_default_mac_algs(), LEGACY_MAC_ALGS)
SIGNATURE_ALGS = tuple(n.decode() for n in get_default_public_key_algs() if n.decode() not in LEGACY_HOST_KEY_ALGS)
"""What the server advertises in ``server-sig-algs`` for client public keys (RFC 8308)."""


@dataclass(frozen=True)
class SshAlgorithms:
    """The server's algorithm policy: strict for everyone, legacy added for `legacy_clients`
    (shell patterns matched against the client's software version)."""

    legacy_clients: tuple[str, ...] = ()

    def server_options(self) -> dict[str, object]:
        """`asyncssh.create_server` keyword arguments: the strict lists."""
        return {"kex_algs": list(KEX_ALGS), "mac_algs": list(MAC_ALGS), "signature_algs": list(SIGNATURE_ALGS)}

    def is_legacy(self, client_version: str) -> bool:
        software = client_version.split("-", 2)[2] if client_version.count("-") >= 2 else client_version
        return any(fnmatch.fnmatchcase(software, pattern) or fnmatch.fnmatchcase(client_version, pattern)
                   for pattern in self.legacy_clients)

    def apply(self, conn: asyncssh.SSHServerConnection, peer: str) -> None:
        """Choose this connection's algorithms when its KEXINIT is sent (the client's version is
        known by then). asyncssh has no per-connection hook for it, so this wraps the method that
        sends KEXINIT; if asyncssh changes its internals, every client gets the strict lists."""
        send_kexinit = getattr(conn, "_send_kexinit", None)
        if send_kexinit is None or not hasattr(conn, "_server_host_keys"):
            log.warning("this asyncssh cannot choose SSH algorithms per client; legacy clients get the strict list")
            return
        host_keys = dict(conn._server_host_keys)
        strict_keys = {alg: key for alg, key in host_keys.items() if alg.decode() not in LEGACY_HOST_KEY_ALGS}
        chosen: list[bool] = []

        def kexinit() -> None:
            if not chosen:
                version = conn.get_extra_info("client_version") or ""
                chosen.append(self.is_legacy(version))
                if chosen[0]:
                    log.info("offering legacy SSH algorithms (SHA-1, group exchange) to %s (%s): it is named by"
                             " --ssh-legacy-client", peer, version)
                    conn._kex_algs = [*conn._kex_algs, *_supported_kex(LEGACY_KEX_ALGS)]
                    conn._mac_algs = [*conn._mac_algs, *(a.encode() for a in LEGACY_MAC_ALGS)]
                    conn._sig_algs = [*conn._sig_algs, b"ssh-rsa"]
                else:
                    conn._server_host_keys = strict_keys
                    conn._server_host_key_algs = list(strict_keys)
            send_kexinit()

        conn._send_kexinit = kexinit  # type: ignore[method-assign]


def _supported_kex(names: Sequence[str]) -> list[bytes]:
    known = set(get_kex_algs())
    return [n.encode() for n in names if n.encode() in known]
