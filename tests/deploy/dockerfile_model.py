"""Dockerfiles and .dockerignore read the way Docker reads them, for checks without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.tools import ROOT

DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def arguments_of(self, keyword: str) -> list[str]:
        return [item.arguments for item in self.instructions if item.keyword == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comment lines dropped (as Docker does)."""
    stages: list[Stage] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") or (not raw.strip() and not pending):
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        pending = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return stages


def copy_sources(arguments: str) -> list[str] | None:
    """The sources of a COPY/ADD, or None for a copy from another stage or image."""
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    flags = [word for word in words if word.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags):
        return None
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def stage_closure(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and every stage it builds on or copies from."""
    by_name = {stage.name: stage for stage in stages}
    seen: dict[str, Stage] = {}
    todo = [name]
    while todo:
        current = by_name[todo.pop()]
        if current.name in seen:
            continue
        seen[current.name] = current
        if current.base in by_name:
            todo.append(current.base)
        for arguments in current.arguments_of("COPY"):
            todo.extend(
                word.split("=", 1)[1]
                for word in arguments.split()
                if word.startswith("--from=") and word.split("=", 1)[1] in by_name
            )
    return list(seen.values())


def pip_installs(runs: list[str]) -> list[str]:
    """The ``pip install ...`` commands inside RUN lines."""
    commands = [command.strip() for run in runs for command in re.split(r"&&|;|\|\|", run)]
    return [command for command in commands if re.match(r"(?:python -m )?pip install\b", command)]


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token.startswith("[") and token.endswith("]"):
            parts.append(token)
        else:
            parts.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token)))
    return re.compile("".join(parts))


def excluded_by_dockerignore(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matches a path or any folder above it."""
    parts = Path(relative).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        regex = dockerignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded
