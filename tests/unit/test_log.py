"""Logs: one JSON object a line under the log dir, with the bound context, rotated by size."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from servicekit.log import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_events_are_json_lines_with_context(tmp_path: Path, restore_logging: None) -> None:
    log_file = configure_logging(tmp_path / "logs", service="gateway", max_bytes=10_000, backup_count=1)
    with structlog.contextvars.bound_contextvars(image_id="abc", request_id="req-1"):
        structlog.get_logger("test").info("stage_completed", stage="decode", duration_ms=1.5)
    logging.getLogger("third.party").warning("plain %s", "message")
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert lines[0]["event"] == "stage_completed"
    assert lines[0]["image_id"] == "abc" and lines[0]["request_id"] == "req-1"
    assert lines[0]["duration_ms"] == 1.5 and lines[0]["level"] == "info"
    assert lines[0]["timestamp"].endswith("Z")
    assert lines[1]["event"] == "plain message"


def test_log_files_are_size_bounded(tmp_path: Path, restore_logging: None) -> None:
    log_file = configure_logging(tmp_path, service="gateway", max_bytes=2_000, backup_count=2)
    for number in range(200):
        structlog.get_logger("test").info("filler", number=number, padding="x" * 50)
    files = sorted(tmp_path.glob("gateway.jsonl*"))
    assert len(files) == 3
    assert all(path.stat().st_size <= 2_200 for path in files)
    assert log_file in files


def test_an_unwritable_log_dir_keeps_the_console(
    tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log dir should be")
    configure_logging(blocker / "logs", service="inference", max_bytes=10_000, backup_count=1)
    structlog.get_logger("test").info("still_logging", image_id="abc")
    console = capsys.readouterr().err
    assert "log_file_unwritable" in console, "the lost file log is announced"
    assert "still_logging" in console and "abc" in console
    assert blocker.read_text() == "a file where the log dir should be"
