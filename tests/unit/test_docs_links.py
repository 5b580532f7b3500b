"""Every relative link in README.md and docs/*.md leads somewhere.

A link's file must exist (relative to the document that holds it), and an `#anchor` into a markdown
file must name one of its headings the way GitHub renders them (github-slugger: lower case, every
character but letters, digits, `_`, `-` and spaces dropped, spaces as `-`, repeats numbered `-1`,
`-2`...). Links with a scheme (`https:`, `mailto:`) and text inside code are not followed.
"""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+).+?\1")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""")
HTML_TAG = re.compile(r"<[^>]+>")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
NOT_IN_SLUG = re.compile(r"[^\w\- ]")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
        else:
            lines.append(INLINE_CODE.sub(" ", line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup reduced to its text, then github-slugger's rule."""
    text = MARKDOWN_LINK.sub(r"\1", heading)
    text = HTML_TAG.sub("", text).replace("`", "")
    return NOT_IN_SLUG.sub("", text.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """Every anchor a document offers: heading slugs (repeats numbered) and HTML `id`/`name`."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fence: str | None = None
    for line in document.read_text(encoding="utf-8").splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading:
            slug = github_slug(heading.group(1))
            repeat = seen.get(slug, 0)
            seen[slug] = repeat + 1
            found.add(slug if repeat == 0 else f"{slug}-{repeat}")
    return found


def link_targets(document: Path) -> list[str]:
    """The target of every link, image and HTML `href`/`src` in a document's prose."""
    targets: list[str] = []
    for line in prose_lines(document.read_text(encoding="utf-8")):
        targets.extend(match.group(2) for match in MARKDOWN_LINK.finditer(line))
        targets.extend(REFERENCE_DEFINITION.findall(line))
        targets.extend(HTML_LINK.findall(line))
    return targets


def broken_links(document: Path) -> list[str]:
    """Each relative link of a document that leads nowhere, with the reason."""
    broken: list[str] = []
    for target in link_targets(document):
        if not target or SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (document.parent / path_part).resolve() if path_part else document
        if not destination.exists():
            broken.append(f"{target}: there is no {path_part} next to {document.name}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {destination.name}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda document: str(document.relative_to(REPO_ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(document: Path) -> None:
    broken = broken_links(document)
    where = document.relative_to(REPO_ROOT)
    assert not broken, f"broken links in {where}:\n" + "\n".join(f"  {link}" for link in broken)


def test_the_readme_and_docs_are_found_and_linked() -> None:
    names = {document.name for document in DOCUMENTS}
    assert {"README.md", "API.md", "design.md", "operations.md", "scaling.md", "benchmarks.md"} <= names
    assert any(target.startswith("docs/") for target in link_targets(REPO_ROOT / "README.md"))


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Stats in constant time", "stats-in-constant-time"),
        ("Code both services share (`servicekit/`)", "code-both-services-share-servicekit"),
        (
            "Replica scaling (`make bench-scaling`, `python -m bench.scaling`)",
            "replica-scaling-make-bench-scaling-python--m-benchscaling",
        ),
        ("Proof: the chaos test (`tests/chaos/test_scale_out.py`)", "proof-the-chaos-test-testschaostest_scale_outpy"),
        ("Using [the API](API.md) — réponses", "using-the-api--réponses"),
    ],
)
def test_github_slug_matches_githubs_anchors(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_a_missing_file_and_a_missing_heading_are_both_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Present heading\n", encoding="utf-8")
    document = tmp_path / "page.md"
    document.write_text(
        "# Page\n\n[ok](other.md#present-heading) [self](#page) [gone](missing.md) [wrong](other.md#absent)\n"
        "```\n[not a link](nowhere.md)\n```\n`[also not](nowhere.md)` [web](https://example.com/x.md)\n",
        encoding="utf-8",
    )
    assert link_targets(document) == [
        "other.md#present-heading",
        "#page",
        "missing.md",
        "other.md#absent",
        "https://example.com/x.md",
    ]
    assert anchors(tmp_path / "other.md") == {"present-heading"}
    assert broken_links(document) == [
        "missing.md: there is no missing.md next to page.md",
        "other.md#absent: no heading with the anchor #absent in other.md",
    ]
