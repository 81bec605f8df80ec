"""Runs the tests where the database matters a second time, on PostgreSQL: `python -m tests.scaled.on_postgres`.

It starts a throwaway PostgreSQL cluster and a redis-server on loopback, points DATABASE_URL and REDIS_URL at
them, runs pytest on MODULES (extra arguments are passed on to pytest), stops both servers by PID and exits with
pytest's status. `make test` runs it after the main session, so a failure here fails `make test`.
tests/scaled/test_on_postgres.py runs only in this session and checks the connection really is PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import BASE_DIR, Postgres, RedisServer

# The delivery contract (ordering, idempotent retries), search (PostgreSQL full-text search rather than FTS5),
# contact transitions and blocks (domain matching, case rules), and the PostgreSQL-only concurrency checks.
MODULES = [
    "tests/chat/test_messages_delivery.py",
    "tests/chat/test_search.py",
    "tests/accounts/test_roster.py",
    "tests/accounts/test_blocking.py",
    "tests/scaled/test_on_postgres.py",
]

# Read by tests/scaled/test_on_postgres.py: without it those tests are skipped, with it they must see PostgreSQL.
MARKER = "IMWEB_TEST_DATABASE"


def main(pytest_args: list[str]) -> int:
    present = [module for module in MODULES if (BASE_DIR / module).exists()]
    for module in sorted(set(MODULES) - set(present)):
        print(f"on_postgres: {module} does not exist (yet); not run", flush=True)
    postgres = Postgres().start()
    redis_server = RedisServer()
    try:
        redis_server.start()
        database_url = postgres.url("imweb")  # pytest-django creates and drops test_imweb beside it
        print(f"on_postgres: PostgreSQL at {database_url}, Redis at {redis_server.url}", flush=True)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_server.url, MARKER: "postgresql"}
        argv = [sys.executable, "-m", "pytest", *pytest_args, *present]
        return subprocess.call(argv, cwd=BASE_DIR, env=env)
    finally:
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    os.chdir(Path(BASE_DIR))
    sys.exit(main(sys.argv[1:]))
