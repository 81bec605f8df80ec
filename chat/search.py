"""Full-text search of message bodies, in the database: SQLite FTS5 on the embedded default, PostgreSQL full-text
search in scaled mode. This module owns the index (created by migration chat 0002) and the raw queries;
`chat.actions.search` validates, authorises and shapes the results.

Both backends get the same query: the words of what the user typed (letters and digits; everything else
separates words), each matched as a prefix, all of them required. User input never reaches either query
language as syntax: FTS5 gets each word as a quoted string, PostgreSQL gets words made only of letters and digits,
so quotes, operators, brackets or a lone `-` typed into the search box are just separators, never an error.

SQLite: `chat_message_fts` is an external-content FTS5 table over `chat_message.body` (it holds only the index),
kept in step by three triggers. Django rebuilds a SQLite table to alter some columns (create a copy, drop the
old table, rename), and dropping a table drops its triggers; `ensure_index` therefore runs after every
`migrate` (chat.apps) and puts back any missing trigger, rebuilding the index when it had to.
PostgreSQL: a GIN index on `to_tsvector('simple', body)`; the query uses exactly that expression, so the planner
uses the index. 'simple' does no stemming and no stop words: chat is in every language at once.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

FTS_TABLE = "chat_message_fts"
PG_INDEX = "chat_message_body_fts"
# Marks around matched words in raw snippets. Stored bodies never contain them: chat.actions.common.clean_body
# refuses C0 control characters, so they cannot be forged by a sender.
MATCH_START = "\x02"
MATCH_END = "\x03"
SNIPPET_WORDS = 16
_NO_ID_LIMIT = 2**63 - 1  # ids are bigints
MESSAGE = "message"  # chat.models.Message.Kind.MESSAGE (this module is imported by migrations: no models here)

_WORD = re.compile(r"[^\W_]+")

# The DDL spells the names out (FTS_TABLE, chat_message) rather than formatting them in, so it reads as SQL.
_SQLITE_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chat_message_fts USING fts5("
    "body, content='chat_message', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
)
_SQLITE_TRIGGERS = {
    "chat_message_fts_insert": (
        "CREATE TRIGGER IF NOT EXISTS chat_message_fts_insert AFTER INSERT ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(rowid, body) VALUES (new.id, new.body); END"
    ),
    "chat_message_fts_delete": (
        "CREATE TRIGGER IF NOT EXISTS chat_message_fts_delete AFTER DELETE ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(chat_message_fts, rowid, body) VALUES ('delete', old.id, old.body); END"
    ),
    "chat_message_fts_update": (
        "CREATE TRIGGER IF NOT EXISTS chat_message_fts_update AFTER UPDATE OF body ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(chat_message_fts, rowid, body) VALUES ('delete', old.id, old.body); "
        "INSERT INTO chat_message_fts(rowid, body) VALUES (new.id, new.body); END"
    ),
}
_SQLITE_REBUILD = "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')"
_PG_CREATE = "CREATE INDEX IF NOT EXISTS chat_message_body_fts ON chat_message USING GIN (to_tsvector('simple', body))"


def create_index(schema_editor: Any) -> None:
    """Create the index for the database behind `schema_editor` (called by the migration)."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(_SQLITE_TABLE)
        for sql in _SQLITE_TRIGGERS.values():
            schema_editor.execute(sql)
        schema_editor.execute(_SQLITE_REBUILD)
    elif vendor == "postgresql":
        schema_editor.execute(_PG_CREATE)


def drop_index(schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for name in _SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    elif vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")


def ensure_index(connection: BaseDatabaseWrapper = default_connection) -> bool:
    """On SQLite, put back index triggers a table rebuild dropped, and then rebuild the index so it holds every
    message again. Returns True when something was repaired. A no-op elsewhere, and before migration 0002."""
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name = %s OR tbl_name = 'chat_message'", [FTS_TABLE])
        present = {row[0] for row in cursor.fetchall()}
        if FTS_TABLE not in present:
            return False
        missing = [sql for name, sql in _SQLITE_TRIGGERS.items() if name not in present]
        for sql in missing:
            cursor.execute(sql)
        if missing:
            cursor.execute(_SQLITE_REBUILD)
    return bool(missing)


def query_words(text: str) -> list[str]:
    """The words of a search: NFKC-normalised (so full-width and composed letters match), letters and digits."""
    return _WORD.findall(unicodedata.normalize("NFKC", text))


def snippet(body: str, words: list[str]) -> str:
    """About SNIPPET_WORDS words of `body` around the first match of `words` (as word prefixes, any case), the
    matches between MATCH_START and MATCH_END, "…" where text was cut. The same shape as FTS5's snippet()."""
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(word) for word in words) + r")[^\W_]*", re.IGNORECASE)
    tokens = body.split()
    first = next((i for i, token in enumerate(tokens) if pattern.search(token)), 0)
    start = max(0, min(first - SNIPPET_WORDS // 4, len(tokens) - SNIPPET_WORDS))
    window = " ".join(tokens[start : start + SNIPPET_WORDS])
    marked = pattern.sub(lambda match: f"{MATCH_START}{match.group(0)}{MATCH_END}", window)
    return ("…" if start > 0 else "") + marked + ("…" if start + SNIPPET_WORDS < len(tokens) else "")


def find(
    user_id: int, words: list[str], *, limit: int, before_id: int | None = None, conversation_id: int | None = None
) -> list[tuple[int, str]]:
    """(message id, raw snippet) of the newest `limit` live messages, with id < before_id when given, that
    contain every word (as a prefix) and belong to a conversation `user_id` is currently in (only
    `conversation_id`, when given: the search panel's "in this conversation"). Room events ("alice invited
    bob") are lines of the history, not messages: the index holds their text, the query leaves them out.

    The snippet is raw message text with MATCH_START/MATCH_END around matched words: escape it before use.
    """
    if not words:
        return []
    vendor = default_connection.vendor
    # No "before" is "before any id": one fixed query text per backend, every value a parameter.
    before = _NO_ID_LIMIT if before_id is None else before_id
    # Likewise no conversation is "any conversation": a range that is one id, or every id.
    lowest, highest = (0, _NO_ID_LIMIT) if conversation_id is None else (conversation_id, conversation_id)
    if vendor == "sqlite":
        match = " ".join(f'"{word}"*' for word in words)  # words hold no quotes: see query_words
        sql = (
            "SELECT m.id, snippet(chat_message_fts, 0, %s, %s, '…', %s) FROM chat_message_fts "
            "JOIN chat_message m ON m.id = chat_message_fts.rowid "
            "JOIN chat_participant p ON p.conversation_id = m.conversation_id "
            "WHERE chat_message_fts MATCH %s AND p.user_id = %s AND p.left_at IS NULL AND m.deleted_at IS NULL "
            "AND m.kind = %s AND m.id < %s AND m.conversation_id BETWEEN %s AND %s ORDER BY m.id DESC LIMIT %s"
        )
        params = [MATCH_START, MATCH_END, SNIPPET_WORDS, match, user_id, MESSAGE, before, lowest, highest, limit]
        with default_connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [(row[0], row[1]) for row in cursor.fetchall()]
    if vendor == "postgresql":
        tsquery = " & ".join(f"{word}:*" for word in words)  # letters and digits only: no tsquery syntax
        sql = (
            "SELECT m.id, m.body FROM chat_message m "
            "JOIN chat_participant p ON p.conversation_id = m.conversation_id "
            "WHERE to_tsvector('simple', m.body) @@ to_tsquery('simple', %s) AND p.user_id = %s "
            "AND p.left_at IS NULL AND m.deleted_at IS NULL AND m.kind = %s AND m.id < %s "
            "AND m.conversation_id BETWEEN %s AND %s ORDER BY m.id DESC LIMIT %s"
        )
        with default_connection.cursor() as cursor:
            cursor.execute(sql, [tsquery, user_id, MESSAGE, before, lowest, highest, limit])
            # Not ts_headline: it parses the body as a document with tags and drops "<b>"-like text from it.
            return [(row[0], snippet(row[1], words)) for row in cursor.fetchall()]
    raise NotImplementedError(f"full-text search is not available on {vendor}")
