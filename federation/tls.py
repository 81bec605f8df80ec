"""TLS for s2s STARTTLS (RFC 6120 §5): our certificate (configured, or a generated self-signed one) and contexts.

Authentication of peers is done by dialback (XEP-0220), not by certificates, which is what Prosody and ejabberd
do with each other unless configured for strict certificate checks (docs/federation.md §6). So the client side does
not verify the peer's certificate (CERT_NONE), and a self-signed certificate is good enough for our side: peers
with `s2s_secure_auth = false` (both servers' built-in default) accept it and fall back to dialback.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation.conf import FederationConfig

_VALIDITY = datetime.timedelta(days=3650)
_RENEW_BEFORE = datetime.timedelta(days=30)


def generate_self_signed(domain: str) -> tuple[bytes, bytes]:
    """A new self-signed certificate for `domain` (and its subdomains) and its key: (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain), x509.DNSName(f"*.{domain}")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_self_signed(state_dir: Path, domain: str) -> Path:
    """The path of a PEM file holding a self-signed certificate and key for `domain`, created when missing.

    Key and certificate live in one file, written to a temporary name and renamed into place, so several
    processes starting at once never read half a pair; the last writer wins and all of them work.
    """
    directory = state_dir / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{domain}.pem"
    if path.exists() and _still_valid(path):
        return path
    cert_pem, key_pem = generate_self_signed(domain)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{domain}.", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it readable by us only (0600)
            handle.write(key_pem + cert_pem)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _still_valid(path: Path) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return False
    return certificate.not_valid_after_utc - _RENEW_BEFORE > datetime.datetime.now(datetime.UTC)


def _load_ours(context: ssl.SSLContext, config: FederationConfig) -> None:
    if config.tls_cert is not None and config.tls_key is not None:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    else:
        context.load_cert_chain(ensure_self_signed(config.state_dir, config.domain))


def server_context(config: FederationConfig) -> ssl.SSLContext:
    """For the listener's STARTTLS: presents our certificate; asks for no client certificate (no SASL EXTERNAL)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ours(context, config)
    return context


def client_context(config: FederationConfig) -> ssl.SSLContext:
    """For our outbound STARTTLS: no verification (dialback authenticates), our certificate on request.

    Prosody and ejabberd ask the initiating server for a certificate (for SASL EXTERNAL); presenting ours
    keeps their handshake on its usual path (docs/federation.md §7.4).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _load_ours(context, config)
    return context
