"""The outbox, lease and inbox tables of ``lightbus_sync.outbox.tables``, and on
PostgreSQL the trigger that notifies the relays when rows are committed."""

from django.db import migrations, models

INBOX_TABLE = """
CREATE TABLE lightbus_inbox (
    listener_group VARCHAR(255) NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    stream VARCHAR(255) NOT NULL,
    stream_id VARCHAR(64) NOT NULL,
    handled_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (listener_group, event_id)
)
"""
INBOX_INDEX = "CREATE INDEX lightbus_inbox_handled_at ON lightbus_inbox (handled_at)"

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION lightbus_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('lightbus_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = (
    "CREATE TRIGGER lightbus_outbox_notify AFTER INSERT ON lightbus_outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION lightbus_outbox_notify()"
)


def create_notify_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_FUNCTION)
        schema_editor.execute(NOTIFY_TRIGGER)


def drop_notify_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS lightbus_outbox_notify ON lightbus_outbox")
        schema_editor.execute("DROP FUNCTION IF EXISTS lightbus_outbox_notify()")


class Migration(migrations.Migration):

    initial = True

    dependencies: list[tuple[str, str]] = [
    ]

    operations = [
        migrations.CreateModel(
            name='OutboxLease',
            fields=[
                ('name', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('owner', models.CharField(max_length=255)),
                ('expires_at', models.FloatField(help_text='seconds since the epoch')),
            ],
            options={
                'db_table': 'lightbus_outbox_lease',
            },
        ),
        migrations.CreateModel(
            name='OutboxEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('api_name', models.CharField(max_length=255)),
                ('stream', models.CharField(max_length=255)),
                ('event_id', models.CharField(max_length=64)),
                ('fields', models.TextField()),
                ('created_at', models.FloatField(help_text='seconds since the epoch')),
            ],
            options={
                'verbose_name': 'outbox entry',
                'verbose_name_plural': 'outbox entries',
                'db_table': 'lightbus_outbox',
                'indexes': [models.Index(fields=['stream', 'id'], name='lightbus_outbox_stream_id')],
            },
        ),
        migrations.RunPython(create_notify_trigger, drop_notify_trigger),
        migrations.RunSQL([INBOX_TABLE, INBOX_INDEX],
                          ["DROP INDEX lightbus_inbox_handled_at", "DROP TABLE lightbus_inbox"]),
    ]
