"""The full-text index of message bodies (chat.search): FTS5 on SQLite, a GIN expression index on PostgreSQL.

SQLite: an external-content FTS5 table (it stores only the index; the text stays in chat_message) kept in step
by triggers on insert, body update and delete. PostgreSQL: a GIN index on to_tsvector('simple', body), the
exact expression chat.search queries. Any other database gets no index (search is then unavailable).
"""

from django.db import migrations

from chat import search


def create_index(apps, schema_editor):
    search.create_index(schema_editor)


def drop_index(apps, schema_editor):
    search.drop_index(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
