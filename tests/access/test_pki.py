"""The agent's certificates as strict X.509 verification (Python >= 3.13, `openssl verify
-x509_strict`) wants them, and a state dir made by an older qstrata: its CA is kept byte for byte
(clients copied it), its leaves are re-issued with the extensions, and they still verify with the
copy of the CA a client already has."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from qstrata.agents.access.pki import ensure_tls, issue_client


def verify(ca: Path, cert: Path, *strict: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "verify", *strict, "-CAfile", str(ca), str(cert)], capture_output=True, text=True)


def test_every_certificate_passes_strict_verification(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path, client=True)
    issue_client(tmp_path, "sae-x", tmp_path / "sae-x.pem", tmp_path / "sae-x.key")
    for cert in (tls.cert, tls.client_cert, tmp_path / "sae-x.pem"):
        done = verify(tls.ca, cert, "-x509_strict")
        assert done.returncode == 0, done.stdout + done.stderr
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    leaf = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ski
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def _old_profile(subject: str, key, issuer: x509.Name, issuer_key, ca: bool) -> bytes:
    """A certificate as qstrata made them before: BasicConstraints (and KeyUsage on the CA) only."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=9))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_an_older_state_dir_keeps_its_ca_and_gets_new_leaves(tmp_path: Path) -> None:
    base = tmp_path / "gnmi"
    base.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qstrata agent CA")])
    (base / "ca.pem").write_bytes(_old_profile("qstrata agent CA", ca_key, name, ca_key, True))
    pkcs8 = serialization.PrivateFormat.PKCS8
    (base / "ca.key").write_bytes(ca_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    for leaf in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        (base / f"{leaf}.pem").write_bytes(_old_profile(f"qstrata agent {leaf}", key, name, ca_key, False))
        (base / f"{leaf}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8,
                                                             serialization.NoEncryption()))
    before = {p.name: p.read_bytes() for p in base.iterdir()}
    copied_ca = tmp_path / "client-copy-of-ca.pem"
    copied_ca.write_bytes(before["ca.pem"])

    tls = ensure_tls(tmp_path, client=True)
    assert tls.ca.read_bytes() == before["ca.pem"] and (base / "ca.key").read_bytes() == before["ca.key"]
    for leaf in ("server.pem", "client.pem"):
        assert (base / leaf).read_bytes() != before[leaf], f"{leaf} re-issued"
        cert = x509.load_pem_x509_certificate((base / leaf).read_bytes())
        for kind in (x509.AuthorityKeyIdentifier, x509.SubjectKeyIdentifier, x509.KeyUsage):
            cert.extensions.get_extension_for_class(kind)
        done = verify(copied_ca, base / leaf)
        assert done.returncode == 0, done.stdout + done.stderr
    again = ensure_tls(tmp_path, client=True)
    assert again.cert.read_bytes() == (base / "server.pem").read_bytes(), "re-issued once, not on every start"
