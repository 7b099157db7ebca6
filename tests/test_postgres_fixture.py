"""The suite's PostgreSQL: a private server from the PostgreSQL binaries (used where none
answers on 127.0.0.1:5432), fresh databases that are dropped, the URL override."""

from __future__ import annotations

import sqlalchemy as sa

from lightbus_sync.testing.postgres import ENV_URL, PrivatePostgres, fresh_database, postgres_server


def test_a_private_server_starts_serves_fresh_databases_and_is_removed():
    server = PrivatePostgres().start()
    try:
        with fresh_database(server.url) as url:
            engine = sa.create_engine(url)
            with engine.connect() as connection:
                name = connection.execute(sa.text("SELECT current_database()")).scalar()
            engine.dispose()
        assert name.startswith("lightbus_test_")
        admin = sa.create_engine(server.url)
        with admin.connect() as connection:
            names = connection.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
        admin.dispose()
        assert name not in names  # dropped
    finally:
        server.stop()
    assert not server.directory.exists()


def test_the_environment_names_the_server(monkeypatch):
    monkeypatch.setenv(ENV_URL, "postgresql+psycopg://someone@db.example:5433/postgres")
    with postgres_server() as url:
        assert url == "postgresql+psycopg://someone@db.example:5433/postgres"
