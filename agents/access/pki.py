"""The agent's own certificate authority, its server certificate, and client certificates.

gNMI and the KME's key delivery API run over TLS by default, so a fresh agent must have
certificates without anybody running openssl: on first start a CA and a server certificate are
made in ``STATE_DIR/gnmi/`` (the folder keeps its first user's name: clients have copied paths
into it) and the CA's path is recorded in ``credentials.json`` as ``"ca"`` for clients. The server certificate names ``localhost``, ``127.0.0.1``, ``::1``, the listen
address and any configured host names, as IP SANs where they are addresses (clients verify
IP SANs, not the CN: a top complaint against gnmic, #172). When the names change, only the
server certificate is re-issued; the CA, which clients have already copied, stays.

Strict X.509 clients (Python >= 3.13 verifies with ``VERIFY_X509_STRICT``, as does
``openssl verify -x509_strict``) want a SubjectKeyIdentifier on the CA and an
AuthorityKeyIdentifier on every certificate it signs, and KeyUsage on both: every certificate
made here has them. A server or client certificate made before that (by an older qstrata) is
re-issued on the next start; the CA is kept as it is (clients have copied it), and its key
identifier is computed from its public key when it has none.
For mutual TLS a client certificate signed by the same CA is written next to it, and
`issue_client` makes one for anybody else (an SAE of the KME: its common name is its SAE ID).
Every front end takes these from here (none imports another).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from qstrata.bindings.wire.tls import TlsFiles

from .users import update_credentials, write_private

DIR = "gnmi"
VALID_DAYS = 3650


def _names(listen: str, hostnames: tuple[str, ...]) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    for name in (listen, *hostnames):
        if name and name not in ("0.0.0.0", "::") and name not in names:
            names.append(name)
    return names


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The AuthorityKeyIdentifier of certificates `ca_cert` signs: its SubjectKeyIdentifier, or
    the same SHA-1 of its public key when it has none (a CA made by an older qstrata)."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _issue(subject: str, key, issuer: x509.Name, issuer_key, *, ca: bool, san=None, usage=None,
           authority: x509.AuthorityKeyIdentifier | None = None) -> x509.Certificate:
    """A certificate for `key`; a leaf (not `ca`) names its issuer's key by `authority`."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                   key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                   decipher_only=False), critical=True))
    if authority is not None:
        builder = builder.add_extension(authority, critical=False)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def ensure_ca(state_dir: Path, name: str = "qstrata agent") -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The agent's CA in ``state_dir/gnmi`` (made when missing): its path, certificate and key."""
    base = Path(state_dir) / DIR
    base.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = base / "ca.pem", base / "ca.key"
    if ca_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        ca_cert = _issue(f"{name} CA", ca_key, issuer, ca_key, ca=True)
        write_private(ca_key_path, _key_pem(ca_key))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return ca_path, ca_cert, ca_key  # type: ignore[return-value]


def issue_client(state_dir: Path, common_name: str, cert_path: Path, key_path: Path) -> None:
    """A client certificate (and its key, mode 0600) for `common_name`, signed by the agent's CA."""
    _, ca_cert, ca_key = ensure_ca(state_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(common_name, key, ca_cert.subject, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH,
                  authority=_key_id(ca_cert))
    write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_tls(state_dir: Path, *, listen: str = "127.0.0.1", hostnames: tuple[str, ...] = (),
               name: str = "qstrata agent", client: bool = False) -> TlsFiles:
    """The CA and server certificate in ``state_dir/gnmi``, made when missing or when the
    names changed; ``credentials.json`` gets ``ca`` (and the client pair when `client`)."""
    base = Path(state_dir) / DIR
    ca_path, ca_cert, ca_key = ensure_ca(state_dir, name)
    names = _names(listen, hostnames)
    cert_path, key_path = base / "server.pem", base / "server.key"
    if not (cert_path.exists() and key_path.exists() and _covers(cert_path, ca_cert, names)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(name, key, ca_cert.subject, ca_key, ca=False, san=_san(names),
                      usage=ExtendedKeyUsageOID.SERVER_AUTH, authority=_key_id(ca_cert))
        write_private(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    entries: dict[str, str] = {"ca": str(ca_path.resolve())}
    client_cert = client_key = None
    if client:
        client_cert, client_key = base / "client.pem", base / "client.key"
        if not (client_cert.exists() and client_key.exists() and _strict(client_cert)):
            issue_client(state_dir, f"{name} client", client_cert, client_key)
        entries |= {"client_cert": str(client_cert.resolve()), "client_key": str(client_key.resolve())}
    update_credentials(state_dir, **entries)
    return TlsFiles(ca_path, cert_path, key_path, client_cert, client_key)


def _covers(cert_path: Path, ca_cert: x509.Certificate, names: list[str]) -> bool:
    """Is the existing server certificate from this CA and naming every name?"""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.issuer != ca_cert.subject or not _strict(cert_path):
            return False
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    return all(str(ipaddress.ip_address(n)) in have if _is_ip(n) else n in have for n in names)


def _strict(cert_path: Path) -> bool:
    """Does a leaf certificate carry what strict X.509 verification wants of it (AKI, SKI and
    KeyUsage)? A leaf made by an older qstrata does not, and is re-issued."""
    try:
        extensions = x509.load_pem_x509_certificate(cert_path.read_bytes()).extensions
        for kind in (x509.AuthorityKeyIdentifier, x509.SubjectKeyIdentifier, x509.KeyUsage):
            extensions.get_extension_for_class(kind)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return True


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
