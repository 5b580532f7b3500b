"""Caption search: a full-text index over ``images.caption_text``, written by the database itself.

Revision ID: 0006_caption_search
Revises: 0005_event_caption_status
Create Date: 2026-12-03

Both indexes follow the caption in the same transaction, whatever code writes it, because the
database maintains them (docs/design.md, "How search works"):

- PostgreSQL: a stored generated ``tsvector`` column ``images.caption_search`` with a GIN index. The
  text goes through ``caption_search_text()`` (lower case, Latin accents folded by ``translate`` with
  the table below, ASCII punctuation turned into spaces) and the ``caption_search`` text search
  configuration (the Porter stemmer, no stop words). No extension is needed: ``unaccent`` is contrib,
  one per database, and not installable everywhere, so the folding is plain SQL.
- SQLite: an FTS5 table ``images_fts`` with external content (``images``, keyed by its rowid) and the
  ``porter unicode61 remove_diacritics 2`` tokenizer, kept in step by triggers on ``images``.

The two agree by construction: the fold table is the set of Latin letters that FTS5's
``remove_diacritics 2`` folds (tests/integration/test_caption_search.py checks every pair on SQLite),
and both stem with Porter's algorithm without stop words. Existing captions are indexed here.

A later migration that recreates ``images`` on SQLite (a batch ``ALTER`` that copies the table)
drops the triggers and renumbers rowids: it must call ``_create_sqlite_index`` again.
"""

from __future__ import annotations

from alembic import op

revision = "0006_caption_search"
down_revision = "0005_event_caption_status"
branch_labels = None
depends_on = None

# Latin letters with diacritics and the letter FTS5's remove_diacritics=2 folds each to (lower case).
ACCENTED = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵ"
    "ĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁ"
    "ȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹ"
    "ḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢả"
    "ẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹſẛ"
)
UNACCENTED = (
    "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijj"
    "kkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuuuaaggkkoooojggnnaaaa"
    "aaeeeeiiiioooorrrruuuusstthhaaeeooooooooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllll"
    "llllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyaaaa"
    "aaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyyss"
)
# ASCII punctuation separates words, as in FTS5's unicode61 (PostgreSQL's parser would otherwise
# read "3.5", "a/b" or "x@y.z" as one token).
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
FOLD_FROM = ACCENTED + PUNCTUATION
FOLD_TO = UNACCENTED + " " * len(PUNCTUATION)
# Word-like token types of PostgreSQL's default parser; numbers and the rest keep the "simple" dictionary.
WORD_TOKENS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part, numword, numhword, hword_numpart"
SQLITE_TRIGGERS = {
    "images_fts_insert": """AFTER INSERT ON images WHEN new.caption_text IS NOT NULL BEGIN
        INSERT INTO images_fts (rowid, caption_text) VALUES (new.rowid, new.caption_text);
    END""",
    "images_fts_delete": """AFTER DELETE ON images WHEN old.caption_text IS NOT NULL BEGIN
        INSERT INTO images_fts (images_fts, rowid, caption_text) VALUES ('delete', old.rowid, old.caption_text);
    END""",
    "images_fts_update": """AFTER UPDATE OF caption_text ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, caption_text)
            SELECT 'delete', old.rowid, old.caption_text WHERE old.caption_text IS NOT NULL;
        INSERT INTO images_fts (rowid, caption_text)
            SELECT new.rowid, new.caption_text WHERE new.caption_text IS NOT NULL;
    END""",
}


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql_index()
    else:
        _create_sqlite_index()


def _create_postgresql_index() -> None:
    op.execute(
        "CREATE FUNCTION caption_search_text(caption text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
        f"RETURN translate(lower(caption), {_quoted(FOLD_FROM)}, {_quoted(FOLD_TO)})"
    )
    op.execute("CREATE TEXT SEARCH DICTIONARY caption_search_stem (TEMPLATE = snowball, Language = porter)")
    op.execute("CREATE TEXT SEARCH CONFIGURATION caption_search (COPY = simple)")
    op.execute(
        f"ALTER TEXT SEARCH CONFIGURATION caption_search ALTER MAPPING FOR {WORD_TOKENS} WITH caption_search_stem"
    )
    # Adding a stored generated column rewrites the table: existing captions are indexed here.
    op.execute(
        "ALTER TABLE images ADD COLUMN caption_search tsvector GENERATED ALWAYS AS "
        "(to_tsvector('caption_search'::regconfig, caption_search_text(caption_text))) STORED"
    )
    # fastupdate off: a caption goes straight into the index instead of a pending list that every search
    # would read through until a vacuum merges it (one caption per processed image is a light write load).
    op.execute("CREATE INDEX ix_images_caption_search ON images USING gin (caption_search) WITH (fastupdate = off)")


def _create_sqlite_index() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE images_fts USING fts5(caption_text, content='images', content_rowid='rowid', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(
        "INSERT INTO images_fts (rowid, caption_text) "
        "SELECT rowid, caption_text FROM images WHERE caption_text IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_images_caption_search")
        op.execute("ALTER TABLE images DROP COLUMN caption_search")
        op.execute("DROP TEXT SEARCH CONFIGURATION caption_search")
        op.execute("DROP TEXT SEARCH DICTIONARY caption_search_stem")
        op.execute("DROP FUNCTION caption_search_text(text)")
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE images_fts")
