"""The base of both services' domain errors: each subclass names its HTTP status, title and problem type.

Domain code raises these; each service's one exception map (``gateway/problems.py``,
``inference/problems.py``) renders them with ``servicekit.problems.problem_of``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ServiceError(Exception):
    """A failure with a human sentence (``detail``) that maps to one problem+json answer."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    type_slug: ClassVar[str] = "internal-error"

    def __init__(
        self, detail: str, *, retry_after_s: float | None = None, extensions: Mapping[str, str | int] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.extensions = dict(extensions or {})
        """Extra members of the problem body (RFC 9457 extensions)."""
