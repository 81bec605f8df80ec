"""The federation settings: defaults, parsing, and clear errors for bad values."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from federation.conf import FederationConfig, from_settings
from federation.dialback import derive_secret


def test_defaults() -> None:
    from django.conf import settings

    config = from_settings()

    assert config.domain == "imweb.localhost"
    assert config.port == 5269
    assert config.tls == "required"
    assert (config.tls_cert, config.tls_key) == (None, None)
    assert config.peers == {}
    assert config.dns_server is None
    assert config.dialback_secret == derive_secret(settings.SECRET_KEY)
    assert config.state_dir == Path(settings.VAR_DIR) / "federation"


@override_settings(
    IMWEB_S2S_PORT="15269",
    IMWEB_S2S_TLS="Off",
    IMWEB_S2S_PEERS="prosody.localhost=127.0.0.1:25269",
    IMWEB_DIALBACK_SECRET="shared by every federation process",
    IMWEB_DNS_SERVER="127.0.0.1:5300",
    IMWEB_TLS_CERT="/etc/imweb/cert.pem",
    IMWEB_TLS_KEY="/etc/imweb/key.pem",
    IMWEB_S2S_HANDSHAKE_TIMEOUT="5",
)
def test_every_setting_is_read() -> None:
    config = from_settings()

    assert config.port == 15269
    assert config.tls == "off"
    assert config.peers == {"prosody.localhost": ("127.0.0.1", 25269)}
    assert config.dialback_secret == "shared by every federation process"
    assert config.dns_server == ("127.0.0.1", 5300)
    assert (config.tls_cert, config.tls_key) == (Path("/etc/imweb/cert.pem"), Path("/etc/imweb/key.pem"))
    assert config.handshake_timeout == 5.0


@override_settings(IMWEB_DNS_SERVER="127.0.0.1")
def test_dns_server_port_defaults_to_53() -> None:
    assert from_settings().dns_server == ("127.0.0.1", 53)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"IMWEB_S2S_TLS": "sometimes"}, "IMWEB_S2S_TLS must be one of required, optional, off"),
        ({"IMWEB_S2S_PORT": "xmpp"}, "IMWEB_S2S_PORT must be a whole number"),
        ({"IMWEB_S2S_PORT": "70000"}, "IMWEB_S2S_PORT must be a port number"),
        ({"IMWEB_S2S_PEERS": "prosody.localhost"}, "IMWEB_S2S_PEERS: expected domain=host:port"),
        ({"IMWEB_DNS_SERVER": "127.0.0.1:dns"}, "IMWEB_DNS_SERVER"),
        ({"IMWEB_TLS_CERT": "/etc/imweb/cert.pem"}, "IMWEB_TLS_CERT and IMWEB_TLS_KEY must be set together"),
        ({"IMWEB_S2S_HANDSHAKE_TIMEOUT": "soon"}, "IMWEB_S2S_HANDSHAKE_TIMEOUT must be a number"),
        ({"IMWEB_DOMAIN": ""}, "IMWEB_DOMAIN must be a lower-case domain name"),
    ],
)
def test_bad_settings_are_improperly_configured_with_the_setting_named(
    overrides: dict[str, str], complaint: str
) -> None:
    with override_settings(**overrides), pytest.raises(ImproperlyConfigured, match=complaint):
        from_settings()


def test_config_can_be_built_directly_for_tests(tmp_path: Path) -> None:
    config = FederationConfig(domain="a.localhost", dialback_secret="s", state_dir=tmp_path, port=0, tls="optional")

    assert (config.domain, config.port, config.tls) == ("a.localhost", 0, "optional")
