"""Settings for `manage.py runfederation` started by the interop tests: the test settings plus the federation
settings taken from the environment, as imweb/settings.py is expected to read them."""

import os

from tests.settings import *  # noqa: F403

IMWEB_S2S_PORT = int(os.environ.get("IMWEB_S2S_PORT", "5269"))
IMWEB_S2S_BIND = os.environ.get("IMWEB_S2S_BIND", "")
IMWEB_S2S_TLS = os.environ.get("IMWEB_S2S_TLS", "required")
IMWEB_S2S_PEERS = os.environ.get("IMWEB_S2S_PEERS", "")
IMWEB_DIALBACK_SECRET = os.environ.get("IMWEB_DIALBACK_SECRET", "")
IMWEB_DNS_SERVER = os.environ.get("IMWEB_DNS_SERVER", "")
IMWEB_TLS_CERT = os.environ.get("IMWEB_TLS_CERT", "")
IMWEB_TLS_KEY = os.environ.get("IMWEB_TLS_KEY", "")
IMWEB_S2S_HANDSHAKE_TIMEOUT = os.environ.get("IMWEB_S2S_HANDSHAKE_TIMEOUT", "")
