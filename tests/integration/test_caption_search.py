"""Caption search in the repository, on SQLite (FTS5) and PostgreSQL (tsvector + GIN): the same answers on both."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlmodel import Session

from gateway.errors import InvalidQueryError
from gateway.persistence.db import MIGRATIONS_DIR, Database, build_engine, upgrade_schema
from gateway.persistence.models import CaptionModel, CaptionStatus, Image, ImageStatus, utc_now
from gateway.persistence.repository import ImageRepository
from gateway.persistence.search import MAX_QUERY_CHARS, parse_query
from gateway.persistence.transitions import CaptionOutcome, FinalState
from tests.repository_backends import BACKENDS, database_url_for, migrated_database, new_image


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as db:
        yield db


def final(caption: str | None, status: ImageStatus = ImageStatus.COMPLETED) -> FinalState:
    outcome = (
        CaptionOutcome(status=CaptionStatus.COMPLETED, text=caption, model=CaptionModel("fake"))
        if caption is not None
        else CaptionOutcome(status=CaptionStatus.UNAVAILABLE, error="down")
    )
    return FinalState(status=status, caption=outcome, completed_at=utc_now(), error=None if caption else "down")


def captioned(database: Database, *captions: str | None) -> list[str]:
    """One image per caption, uploaded in this order (1 ms apart), then claimed and finished through the
    repository's write paths: the caption is written exactly as the pipeline writes it."""
    start = utc_now()
    images = [new_image(created_at=start + timedelta(milliseconds=n)) for n in range(len(captions))]

    def write(session: Session) -> None:
        repository = ImageRepository(session)
        repository.add_all(images)
        repository.claim("token", 60, limit=len(images))
        repository.finish_many(
            "token", [(image.id, final(caption)) for image, caption in zip(images, captions, strict=True)]
        )

    database.run_sync(write)
    return [image.id for image in images]


def search(database: Database, q: str, status: ImageStatus | None = None, limit: int = 50) -> list[str]:
    query = parse_query(q)
    page = database.run_sync(
        lambda session: ImageRepository(session).list_page(status, limit, None, query), write=False
    )
    return [image.id for image in page.items]


def test_search_finds_captions_holding_every_word_newest_first(database: Database) -> None:
    beach, sofa, both, _none = captioned(
        database, "a dog on the beach", "a dog on a sofa", "a dog and a cat on the beach", None
    )
    assert search(database, "dog") == [both, sofa, beach]
    assert search(database, "dog beach") == [both, beach]
    assert search(database, "beach dog cat") == [both]
    assert search(database, "horse") == []


@pytest.mark.parametrize(
    ("caption", "q"),
    [
        ("a Dog on the BEACH", "dog beach"),
        ("a dog on the beach", "DOG Beach"),
        ("a café in Zürich", "cafe zurich"),
        ("a cafe in Zurich", "CAFÉ ZÜRICH"),
        ("a crème brûlée", "creme brulee"),
        ("two dogs on the beaches", "dog beach"),
        ("a dog on the beach", "dogs beaches"),
        ("a man running with dogs", "runs dog"),
        ("a woman walked her puppies", "walking puppy"),
        ("boxes of berries", "box berry"),
        ("the dog's ball", "dog ball"),
        ("a sea-side town", "sea side"),
        ("3.5 metres of snow", "3 5 metre"),
        ("l'été à la plage", "ete plage"),
    ],
)
def test_case_accents_and_inflections_do_not_matter(database: Database, caption: str, q: str) -> None:
    (image_id,) = captioned(database, caption)
    assert search(database, q) == [image_id]


def test_stop_words_are_words_like_any_other(database: Database) -> None:
    with_the, _without = captioned(database, "the dog", "a dog")
    assert search(database, "the dog") == [with_the]


def test_search_combines_with_status(database: Database) -> None:
    completed, failed_later = captioned(database, "a red bus", "a red car")
    database.run_sync(lambda session: ImageRepository(session).add(new_image(caption_text=None)))
    assert search(database, "red", status=ImageStatus.COMPLETED) == [failed_later, completed]
    assert search(database, "red", status=ImageStatus.PENDING) == []


def test_cursor_pages_through_search_results(database: Database) -> None:
    captions = [f"a dog number {n}" if n % 2 == 0 else f"a cat number {n}" for n in range(9)]
    ids = captioned(database, *captions)
    query = parse_query("dog")
    seen: list[str] = []
    cursor = None
    while True:
        page = database.run_sync(
            lambda session, cursor=cursor: ImageRepository(session).list_page(None, 2, cursor, query), write=False
        )
        seen += [image.id for image in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [ids[n] for n in (8, 6, 4, 2, 0)]


def test_a_deleted_image_leaves_the_results_at_once(database: Database) -> None:
    keep, gone = captioned(database, "a yellow kite", "a yellow kite")
    assert database.run_sync(lambda session: ImageRepository(session).delete(gone))
    assert search(database, "kite") == [keep]


def test_a_caption_is_findable_in_the_transaction_that_writes_it(database: Database) -> None:
    image = new_image()

    def add_claim_finish_and_search(session: Session) -> list[str]:
        repository = ImageRepository(session)
        repository.add(image)
        repository.claim("token", 60, limit=1)
        repository.finish(image.id, "token", final("a green tractor"))
        return [found.id for found in repository.list_page(None, 10, None, parse_query("tractor")).items]

    assert database.run_sync(add_claim_finish_and_search) == [image.id]
    assert search(database, "tractor") == [image.id]


def test_a_new_caption_replaces_the_old_one_in_the_index(database: Database) -> None:
    (image_id,) = captioned(database, "a blue boat")

    def recaption(session: Session) -> None:
        image = session.get(Image, image_id)
        assert image is not None
        image.caption_text = "a white swan"
        session.flush()

    database.run_sync(recaption)
    assert search(database, "boat") == []
    assert search(database, "swan") == [image_id]


@pytest.mark.parametrize(
    "q",
    [
        '"dog',
        'dog"',
        "dog*",
        "*dog",
        "-dog",
        "dog:",
        "caption_text:dog",
        "^dog",
        "{dog}",
        "(dog",
        "dog)",
        "dog AND",
        "dog\x00",
        "dog'; DROP TABLE images; --",
        "dog & | ! <-> :*",
        "dog\\",
        "dog\u200b",
    ],
)
def test_operators_and_punctuation_are_word_separators(database: Database, q: str) -> None:
    dog, _cat = captioned(database, "a dog", "a cat")
    expected = [dog] if "AND" not in q and "DROP" not in q and "caption_text" not in q else []
    assert search(database, q) == expected


@pytest.mark.parametrize("q", ["NEAR(dog beach)", "dog AND beach", "dog OR cat", "dog NOT cat", "drop table images"])
def test_query_language_keywords_are_searched_as_words(database: Database, q: str) -> None:
    literal, _other = captioned(database, f"a sign that says {q.lower()}", "a dog with a cat on the beach")
    assert search(database, q) == [literal]


@pytest.mark.parametrize("q", ["*", "***", '""', "-", ":", "()", "\x00", "?!", "\U0002ee2f"])
def test_a_query_without_letters_or_digits_finds_nothing(database: Database, q: str) -> None:
    captioned(database, "a dog on the beach", "a cat on a sofa")
    assert search(database, q) == []


def test_a_query_over_the_length_limit_is_an_invalid_query() -> None:
    assert parse_query("dog " * (MAX_QUERY_CHARS // 4)) is not None
    with pytest.raises(InvalidQueryError, match=f"at most {MAX_QUERY_CHARS}"):
        parse_query("x" * (MAX_QUERY_CHARS + 1))


@pytest.mark.parametrize("q", [None, "", "   ", "\t\n"])
def test_a_blank_query_is_the_plain_list(q: str | None) -> None:
    assert parse_query(q) is None


def migration_0006() -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / "0006_caption_search.py"
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_accented_latin_letter_is_found_by_its_plain_letter(database: Database) -> None:
    fold = migration_0006()
    pairs = list(zip(fold.ACCENTED, fold.UNACCENTED, strict=True))
    images = [new_image(caption_text=f"q{accented}q") for accented, _plain in pairs]
    database.run_sync(lambda session: ImageRepository(session).add_all(images))
    for plain in sorted({plain for _accented, plain in pairs}):
        expected = {image.id for image, (_a, folded) in zip(images, pairs, strict=True) if folded == plain}
        assert set(search(database, f"q{plain}q", limit=500)) == expected, plain


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_indexes_captions_written_before_it(backend: str, tmp_path: Path) -> None:
    with database_url_for(backend, tmp_path) as url:
        engine = build_engine(url)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005_event_caption_status")
            connection.execute(
                text(
                    "INSERT INTO images (id, filename, status, created_at, request_id, format, mode, width, height, "
                    "size_bytes, sha256, metadata_done, caption_text, caption_status, attempts, caption_cycles) "
                    "VALUES ('0123456789abcdef0123456789abcdef', 'a.jpg', 'completed', :at, '', 'JPEG', 'RGB', 1, 1, "
                    "1, :sha, false, 'an old red tractor', 'completed', 1, 0)"
                ),
                {"at": utc_now(), "sha": "0" * 64},
            )
        upgrade_schema(engine)
        database = Database(engine)
        try:
            assert search(database, "tractors") == ["0123456789abcdef0123456789abcdef"]
        finally:
            database.dispose()
