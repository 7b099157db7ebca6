"""What the outbox and inbox tests share: an engine on a fresh database with the
library's tables, and reading a table back."""

import pytest
import sqlalchemy as sa

from lightbus_sync.outbox import create_tables


@pytest.fixture
def outbox_engine(database_url):
    """An Engine on an empty database (SQLite, PostgreSQL, MariaDB) with the outbox and
    inbox tables; disposed after the test."""
    engine = sa.create_engine(database_url)
    create_tables(engine)
    yield engine
    engine.dispose()


def rows(engine, table):
    with engine.connect() as connection:
        return connection.execute(sa.select(table)).all()
