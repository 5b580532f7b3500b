"""Caption search: ``q`` as plain words, and the condition that finds images whose caption holds them all.

The index itself is the database's (migration ``0006_caption_search``): a generated ``tsvector`` column
with a GIN index on PostgreSQL, an FTS5 table kept by triggers on SQLite. Both fold case and Latin
accents and stem with Porter's algorithm, without stop words, so both answer the same.

``q`` is never handed to a query language: it is split here into words (runs of letters and digits),
and each word reaches the database as a bound value: quoted FTS5 strings on SQLite, ``plainto_tsquery``
on PostgreSQL. Quotes, ``*``, ``NEAR(``, ``AND``/``OR``, ``:``, ``-`` are then separators or plain words.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Select, column, false, func, literal_column, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, TextClause

from gateway.errors import InvalidQueryError

MAX_QUERY_CHARS = 200
WORD = re.compile(r"[^\W_]+")  # letters and digits; everything else separates words, as in FTS5's unicode61
FTS_TABLE = "images_fts"
TSVECTOR_COLUMN = "caption_search"
GIN_INDEX = "ix_images_caption_search"
# SQLite: up to sqrt(3 * images) hits (at least 50) are looked up by rowid and sorted; more, and the query
# walks created_at. Looking a hit up costs ~20 times a step of the walk, which takes ~50 * images / hits
# steps to fill a page of 50: the two meet near sqrt(2.5 * images), 1,700 hits at a million images.
SQLITE_FEW_HITS_MIN = 50


@dataclass(frozen=True)
class CaptionQuery:
    """The words of ``q``; an image matches when its caption holds every one of them."""

    words: tuple[str, ...]


def parse_query(q: str | None) -> CaptionQuery | None:
    """``q`` as words; ``None`` for an absent or blank ``q`` (the plain list); a 400 for a ``q`` over
    ``MAX_QUERY_CHARS`` characters. A ``q`` with no letter or digit in it (``***``, or a character this
    Python's Unicode tables do not know yet) holds no word, and no caption matches it."""
    if q is None or not q.strip():
        return None
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidQueryError(f"q is {len(q)} characters long; at most {MAX_QUERY_CHARS} are searched.")
    words = tuple(WORD.findall(unicodedata.normalize("NFC", q)))
    return CaptionQuery(words=tuple(dict.fromkeys(words)))


def caption_matches(session: Session, query: CaptionQuery) -> ColumnElement[bool] | TextClause:
    """The condition on ``images`` for ``query``, served by the database's full-text index.

    PostgreSQL's planner knows how common each word is (statistics of the tsvector column) and picks
    the GIN index or a walk of ``created_at`` by itself. SQLite's does not, so the FTS5 hits are counted
    first, up to ``sqlite_few_hits``: a few hits are looked up by rowid and sorted; many hits are a set
    that a walk of the images newest first tests each row against, stopping once the page is full
    (``+`` keeps SQLite from driving the query by the rowid set). docs/design.md, "How search works",
    has the numbers.
    """
    if not query.words:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        return text(
            f"images.{TSVECTOR_COLUMN} @@ plainto_tsquery('caption_search', caption_search_text(:caption_words))"
        ).bindparams(caption_words=" ".join(query.words))
    hits = sqlite_hits(query)
    few_hits = sqlite_few_hits(session)
    few = list(session.execute(hits.limit(few_hits + 1)).scalars())
    if len(few) <= few_hits:
        return literal_column("images.rowid").in_(few)
    return literal_column("+images.rowid").in_(hits)


def sqlite_few_hits(session: Session) -> int:
    """How many hits SQLite still looks up one by one: grows with the table (its newest rowid, one probe)."""
    newest_rowid = session.execute(select(func.max(literal_column("rowid"))).select_from(table("images"))).scalar()
    return max(SQLITE_FEW_HITS_MIN, math.isqrt(3 * int(newest_rowid or 0)))


def sqlite_hits(query: CaptionQuery) -> Select[tuple[int]]:
    """The rowids of the images whose caption holds every word: FTS5, each word a quoted string (a word
    holds no quote), side by side meaning AND."""
    match = " ".join(f'"{word}"' for word in query.words)
    fts = table(FTS_TABLE, column("rowid"))
    return select(fts.c.rowid).where(text(f"{FTS_TABLE} MATCH :caption_match").bindparams(caption_match=match))


def is_search_index(name: str | None, type_: str) -> bool:
    """True for the schema objects of the search index, which the SQLModel tables do not declare
    (a virtual table and its shadow tables on SQLite; a generated column and its GIN index on PostgreSQL)."""
    if name is None:
        return False
    if type_ == "table":
        return name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_")
    return name in (TSVECTOR_COLUMN, GIN_INDEX)
