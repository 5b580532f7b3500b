"""Run Schemathesis (every phase, every check, no status tolerated, bounded examples) in process against an ASGI app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, from_schema
from schemathesis.engine.events import FatalError, NonFatalError, ScenarioFinished
from schemathesis.python import asgi

import tests.contract.schemathesis_hooks  # noqa: F401  (registers the generator's hooks and image strategies)

MAX_RESPONSE_TIME_S = 60.0
ALLOWED_OPERATION_KEYS = {"enabled", "request-timeout"}


@dataclass
class SchemathesisRun:
    """What a run found, and how many requests it sent (a run that sent nothing proves nothing)."""

    findings: list[Finding] = field(default_factory=list)
    requests: int = 0


@dataclass(frozen=True)
class Finding:
    """One failed check (with its ST code) or engine error, named by operation."""

    operation: str
    code: str
    title: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code} {self.operation}: {self.title}: {self.detail[:600]}"


def run_schemathesis(
    app: Any,
    schema_path: str,
    *,
    max_examples: int,
    operations: list[dict[str, Any]] | None = None,
    ready_path: str | None = None,
    seed: int = 1,
) -> SchemathesisRun:
    """Findings of a full run; the app's lifespan is shut down afterwards.

    ``operations`` are ``[[operations]]`` tables of schemathesis.toml that may only leave an
    operation out (``enabled = false``) or bound how long its answer is read (``request-timeout``:
    an event stream is then checked on what it sent by then). The run is strict: no check is
    loosened for any operation. What a schema cannot express goes to the generator
    (``schemathesis_hooks``), not to the checks.
    """
    for table in operations or []:
        loosened = {key for key in table if not key.startswith(("include-", "exclude-"))} - ALLOWED_OPERATION_KEYS
        assert not loosened, f"a strict run tunes no check: {sorted(loosened)}"
    data = {
        "seed": seed,
        "continue-on-failure": True,
        # deterministic: the same requests every run; no example database (.hypothesis/) in the repository
        "generation": {"max-examples": max_examples, "database": "none", "deterministic": True},
        "operations": operations or [],
    }
    config = SchemathesisConfig.from_dict(data)
    # Every check; the response-time one with a limit for a loaded 2-core machine, not a benchmark.
    config.projects.override.checks.update(included_check_names=["all"], max_response_time=MAX_RESPONSE_TIME_S)
    try:
        if ready_path is not None:
            wait_until_ready(app, ready_path)
        schema = schemathesis.openapi.from_asgi(schema_path, app, config=config)
        run = SchemathesisRun()
        for event in from_schema(schema).execute():
            run.findings.extend(_findings(event))
            if isinstance(event, ScenarioFinished):
                run.requests += len(event.recorder.interactions)
        return run
    finally:
        asgi.shutdown_lifespans()


def wait_until_ready(app: Any, path: str, timeout_s: float = 120) -> None:
    """Start the app's lifespan in Schemathesis' own event loop and poll ``path`` until it answers 200."""
    deadline = time.monotonic() + timeout_s
    with asgi.get_client(app) as client:
        while client.get(f"http://{asgi.HOST}{path}").status_code != 200:
            assert time.monotonic() < deadline, f"{path} never answered 200"
            time.sleep(0.05)


def _findings(event: Any) -> Iterator[Finding]:
    if isinstance(event, ScenarioFinished) and event.status == Status.FAILURE:
        for case_id, checks in event.recorder.checks.items():
            interaction = event.recorder.interactions.get(case_id)
            sent = f"{interaction.request.method} {interaction.request.uri}" if interaction else event.label
            answer = _answer(interaction)
            for check in checks:
                if check.status == Status.FAILURE and check.failure_info is not None:
                    failure = check.failure_info.failure
                    detail = f"{failure.message or ''}{answer}"
                    yield Finding(sent or "?", failure.code or check.name, failure.title, detail)
    elif isinstance(event, (NonFatalError, FatalError)):
        yield Finding(getattr(event, "label", "?") or "?", "error", type(event).__name__, str(event.info))


def _answer(interaction: Any) -> str:
    """The status and the start of the body that failed a check: the finding names its cause."""
    response = getattr(interaction, "response", None)
    if response is None:
        return ""
    return f"\nAnswered {response.status_code}: {response.content[:200]!r}"
