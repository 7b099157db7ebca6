"""PostgreSQL for tests: a server, and throwaway databases on it.

``find_postgres()`` gives the URL of a server to use: ``$LIGHTBUS_TEST_POSTGRES_URL``
if set, else 127.0.0.1:5432 (user ``postgres``, trust auth) if it answers, else a
private server started from the PostgreSQL binaries (``pg_config --bindir``) in a
temporary directory on a free port, as an unprivileged user when running as root.
``fresh_database(url)`` creates a uniquely named database there and drops it after.
MySQL/MariaDB, where there is one (``mariadb_server_url()``), gets the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ENV_URL = "LIGHTBUS_TEST_POSTGRES_URL"


class PostgresNotFound(RuntimeError):
    """No server answers and none can be started here."""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    """A PostgreSQL server of our own: ``initdb`` + ``pg_ctl start`` in a temporary
    directory (trust auth, 127.0.0.1 only); ``stop()`` removes it."""

    def __init__(self, user: Optional[str] = None) -> None:
        self.bindir = Path(self._bindir())
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="lightbus-pg-"))
        self.data = self.directory / "data"
        self.run_as = user if user is not None else ("nobody" if os.geteuid() == 0 else None)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _bindir() -> str:
        pg_config = shutil.which("pg_config")
        if pg_config is None:
            raise PostgresNotFound("no PostgreSQL server answers and pg_config is not installed")
        return subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.directory)

    def start(self) -> "PrivatePostgres":
        if self.run_as is not None:
            shutil.chown(self.directory, user=self.run_as)
            os.chmod(self.directory, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.directory / "log"),
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off",
                  "start")
        deadline = time.monotonic() + 30
        while not _answers("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise PostgresNotFound(f"the private PostgreSQL on port {self.port} did not start")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URL (of its ``postgres`` database) of a server to test against, as described
    in the module docstring; a private server is stopped at the end."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    if _answers("127.0.0.1", 5432):
        yield DEFAULT_URL
        return
    server = PrivatePostgres().start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str = "lightbus_test") -> Iterator[str]:
    """Create a uniquely named database on ``server_url``'s server (PostgreSQL, or
    MySQL/MariaDB); yield its URL; drop it."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    postgres = admin.dialect.name == "postgresql"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"' if postgres else f"CREATE DATABASE `{name}`"))
        url = sa.engine.make_url(server_url).set(database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if postgres else f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


MARIADB_DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/"
MARIADB_ENV_URL = "LIGHTBUS_TEST_MARIADB_URL"


def mariadb_server_url() -> Optional[str]:
    """``$LIGHTBUS_TEST_MARIADB_URL``, else 127.0.0.1:3306 (user root, no password) if it
    answers, else None (no MariaDB/MySQL here)."""
    url = os.environ.get(MARIADB_ENV_URL)
    if url:
        return url
    return MARIADB_DEFAULT_URL if _answers("127.0.0.1", 3306) else None
