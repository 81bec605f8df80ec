"""Our TLS certificate for s2s STARTTLS: generated once per domain under the state folder when none is configured."""

import ssl
from pathlib import Path

from cryptography import x509

from federation.conf import FederationConfig
from federation.tls import client_context, ensure_self_signed, generate_self_signed, server_context


def test_generated_certificate_names_the_domain_and_its_subdomains() -> None:
    cert_pem, key_pem = generate_self_signed("imweb.localhost")

    certificate = x509.load_pem_x509_certificate(cert_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["imweb.localhost", "*.imweb.localhost"]
    assert b"PRIVATE KEY" in key_pem


def test_self_signed_pair_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = ensure_self_signed(tmp_path, "imweb.localhost")
    content = first.read_bytes()

    second = ensure_self_signed(tmp_path, "imweb.localhost")

    assert second == first == tmp_path / "tls" / "imweb.localhost.pem"
    assert second.read_bytes() == content  # reused, not regenerated
    assert first.stat().st_mode & 0o077 == 0  # the key is readable by us only


def test_unreadable_certificate_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "imweb.localhost.pem").write_text("not a certificate")

    path = ensure_self_signed(tmp_path, "imweb.localhost")

    x509.load_pem_x509_certificate(path.read_bytes())


def test_contexts_load_our_certificate_and_the_client_does_not_verify_peers(tmp_path: Path) -> None:
    config = FederationConfig(domain="imweb.localhost", dialback_secret="s", state_dir=tmp_path)

    client = client_context(config)
    server = server_context(config)

    assert (client.verify_mode, client.check_hostname) == (ssl.CERT_NONE, False)  # dialback authenticates
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2


def test_configured_certificate_files_are_used(tmp_path: Path) -> None:
    cert_pem, key_pem = generate_self_signed("imweb.example")
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    config = FederationConfig(
        domain="imweb.example",
        dialback_secret="s",
        state_dir=tmp_path / "state",
        tls_cert=tmp_path / "cert.pem",
        tls_key=tmp_path / "key.pem",
    )

    server_context(config)

    assert not (tmp_path / "state").exists()  # nothing generated
