"""Test settings: the product's settings module, pointed at a throwaway state folder before it is read."""

import os
import tempfile

# Each test run gets its own state folder (SQLite test DB, embedded Valkey socket, uploads), so a run never
# touches var/ of a developer's running instance. REDIS_URL/DATABASE_URL from the environment still win.
os.environ.setdefault("IMWEB_VAR_DIR", tempfile.mkdtemp(prefix="imweb-test-"))
os.environ.setdefault("IMWEB_DOMAIN", "imweb.localhost")

from imweb.settings import *  # noqa: F403
