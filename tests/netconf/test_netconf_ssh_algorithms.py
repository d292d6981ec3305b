"""The SSH algorithms a real agent offers, as ssh-audit (PyPI) and real SSH clients see them.

ssh-audit counted 10 failures on the agent before (asyncssh's defaults: five NIST-curve key
exchanges, diffie-hellman-group14-sha1, group exchange down to a 1024-bit modulus, ssh-rsa host-key
signatures, hmac-sha1 and hmac-sha1-etm) against 6 on Debian's OpenSSH 9.2 with its defaults. What
may remain are the NIST curves, which OpenSSH offers too and many clients need: 5 failures.
A client named with --ssh-legacy-client still gets SHA-1; nobody else does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

SSH_AUDIT = shutil.which("ssh-audit", path=str(Path(sys.executable).parent)) or shutil.which("ssh-audit")
ALLOWED_FAILURES = 5
"""ssh-audit 3.x fails every NIST-curve key exchange (mlkem768nistp256, mlkem1024nistp384,
ecdh-sha2-nistp256/384/521); nothing else may fail."""
SHA1 = {"diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1", "diffie-hellman-group-exchange-sha1",
        "ssh-rsa", "hmac-sha1", "hmac-sha1-etm@openssh.com"}
LEGACY_NAME = "OldBox-*"


@pytest.fixture(scope="module")
def node(agent):
    return agent("qkd", "audited", twin=False, extra_args=("--ssh-legacy-client", LEGACY_NAME))


def audit(node) -> dict:
    assert SSH_AUDIT, "ssh-audit is in the test extra (pip install -e '.[test]')"
    proc = subprocess.run([SSH_AUDIT, "-j", "--skip-rate-test", "-p", str(node.port), node.host],
                          capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout)


def test_ssh_audit_finds_no_sha1_and_no_small_modulus(node) -> None:
    report = audit(node)
    offered = {kind: {a["algorithm"]: a for a in report[kind]} for kind in ("kex", "key", "enc", "mac")}
    failures = [(kind, name, note) for kind, algs in offered.items() for name, a in algs.items()
                for note in a.get("notes", {}).get("fail", [])]
    assert len(failures) <= ALLOWED_FAILURES, failures
    assert all("elliptic curves" in note for _, _, note in failures), failures
    assert not SHA1 & {name for algs in offered.values() for name in algs}, offered
    assert all(a.get("keysize", 2048) >= 2048 for algs in offered.values() for a in algs.values()), offered
    assert {"rsa-sha2-256", "rsa-sha2-512", "ssh-ed25519"} <= set(offered["key"])  # RSA-only clients still get in
    assert node.process.poll() is None


async def handshake(node, version: str, **algs) -> str:
    """Log in as an SSH client calling itself `version` with only `algs`; the server's <hello>."""
    creds = node.credentials
    async with asyncssh.connect(node.host, node.port, username=creds["username"], password=creds["password"],
                                known_hosts=None, client_keys=None, agent_path=None, config=None,
                                client_version=version, **algs) as conn:
        stdin, stdout, _ = await conn.open_session(subsystem="netconf", encoding=None)
        data = b""
        while b"]]>]]>" not in data:
            more = await stdout.read(1 << 16)
            assert more, data
            data += more
        return data.decode()


SHA1_ONLY = dict(kex_algs=["diffie-hellman-group14-sha1"], server_host_key_algs=["ssh-rsa"],
                 mac_algs=["hmac-sha1"], encryption_algs=["aes128-ctr"])


@pytest.mark.parametrize("algs", [
    dict(kex_algs=["diffie-hellman-group14-sha1"]),
    dict(kex_algs=["diffie-hellman-group-exchange-sha256"]),
    dict(server_host_key_algs=["ssh-rsa"]),
    dict(mac_algs=["hmac-sha1"], encryption_algs=["aes128-ctr"]),
], ids=["group14-sha1", "group-exchange", "ssh-rsa", "hmac-sha1"])
def test_a_client_that_only_speaks_sha1_is_refused(node, algs) -> None:
    with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.DisconnectError, ConnectionError)):
        asyncio.run(asyncio.wait_for(handshake(node, "JSCH-0.1.54", **algs), 30))


def test_a_named_legacy_client_gets_sha1_and_others_keep_modern_algorithms(node) -> None:
    hello = asyncio.run(asyncio.wait_for(handshake(node, "OldBox-2.1", **SHA1_ONLY), 30))
    assert "urn:ietf:params:netconf:base:1.1" in hello
    assert "offering legacy SSH algorithms" in node.log_text(tail=20000)
    # an RSA-only modern client: rsa-sha2-256 host key signatures
    hello = asyncio.run(asyncio.wait_for(handshake(node, "Modern-1.0", server_host_key_algs=["rsa-sha2-256"]), 30))
    assert "urn:ietf:params:netconf:base:1.1" in hello
