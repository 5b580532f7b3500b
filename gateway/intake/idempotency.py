"""``Idempotency-Key`` on ``POST /api/images`` (IETF httpapi draft), held in the database.

The key is claimed (a row inserted, ``ON CONFLICT DO NOTHING``) before the body is read, so
concurrent duplicates on any number of gateways find one claim: the first request stores the
image, the others get 409 while it is in flight. The claim is completed in the transaction that
inserts the image row, so a crash cannot leave an image whose key still looks in flight; the row
then keeps the 202's body and the sha256 of the file bytes. A repeat with the same bytes gets the
same answer (no new row), with other bytes a 422. A request that ends in anything but 202 gives
its claim back, so it may be sent again with the same key. Keys live ``GATEWAY_IDEMPOTENCY_TTL_H``
hours and are scoped by a hash of the bearer token when ``GATEWAY_API_KEY`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import anyio.to_thread
import structlog
from litestar.serialization import decode_json, encode_json
from sqlalchemy import delete, update
from sqlmodel import Session, col

from gateway.errors import (
    IdempotencyKeyInUseError,
    IdempotencyKeyMismatchError,
    InvalidIdempotencyKeyError,
    StorageUnavailableError,
)
from gateway.intake.uploads import UploadService
from gateway.persistence.db import Database
from gateway.persistence.models import IdempotencyRecord, Image, utc_now
from gateway.persistence.upsert import upsert_into
from gateway.schemas import ImageSummary, summary_of

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
# A claim whose request died with its gateway (no 202, no release) is free again after this.
STALE_CLAIM_S = 15 * 60
_KEY_PATTERN = re.compile(r'^"?([\x21\x23-\x7e]{1,255})"?$')
log = structlog.get_logger("gateway.idempotency")


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key, hashed together with its API-key scope; only the hash is stored."""

    key_hash: str

    @classmethod
    def from_header(cls, raw: str, bearer: str | None) -> IdempotencyKey:
        """Parse the header (a bare token or an sf-string) or raise ``InvalidIdempotencyKeyError``."""
        match = _KEY_PATTERN.fullmatch(raw.strip())
        if match is None:
            raise InvalidIdempotencyKeyError(
                f"{IDEMPOTENCY_HEADER} must be 1..{MAX_KEY_CHARS} visible ASCII characters, e.g. a UUID."
            )
        scope = hashlib.sha256(bearer.encode()).hexdigest() if bearer else ""
        return cls(hashlib.sha256(f"{scope}\n{match.group(1)}".encode()).hexdigest())


def idempotency_key_of(header: str | None, authorization: str | None, api_key: str | None) -> IdempotencyKey | None:
    """The request's key, scoped by its bearer token when the gateway has an API key; None without one."""
    if header is None:
        return None
    bearer = (authorization or "").partition(" ")[2].strip() if api_key else None
    return IdempotencyKey.from_header(header, bearer)


@dataclass(frozen=True)
class Claim:
    """What the database said about a key: ours to use (``token``), or someone else's ``record``."""

    token: str | None
    record: IdempotencyRecord | None


class IdempotencyStore:
    """The ``idempotency_keys`` table: claim, give back, remember the 202, prune."""

    def __init__(self, database: Database, ttl_h: float) -> None:
        self.database = database
        self.ttl = timedelta(hours=ttl_h)

    async def claim(self, key: IdempotencyKey) -> Claim:
        return await self.database.write(lambda session: self._claim(session, key))

    def _claim(self, session: Session, key: IdempotencyKey) -> Claim:
        now = utc_now()
        table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
        created_at = col(IdempotencyRecord.created_at)
        stale_claim = ~col(IdempotencyRecord.completed) & (created_at < now - timedelta(seconds=STALE_CLAIM_S))
        expired = (created_at < now - self.ttl) | stale_claim
        session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.key_hash) == key.key_hash, expired))
        token = uuid.uuid4().hex
        inserted = session.execute(
            upsert_into(session, table)
            .values(key_hash=key.key_hash, claim_token=token, created_at=now, completed=False)
            .on_conflict_do_nothing(index_elements=["key_hash"])
            .returning(table.c.claim_token)
        ).scalar_one_or_none()
        if inserted == token:
            return Claim(token=token, record=None)
        return Claim(token=None, record=session.get(IdempotencyRecord, key.key_hash))

    async def release(self, key: IdempotencyKey, token: str) -> None:
        await self.database.write(
            lambda session: session.execute(
                delete(IdempotencyRecord).where(
                    col(IdempotencyRecord.key_hash) == key.key_hash, col(IdempotencyRecord.claim_token) == token
                )
            )
        )

    @staticmethod
    def remember(session: Session, key: IdempotencyKey, token: str, image: Image) -> None:
        """Complete the claim with the 202's body, in the transaction that inserts ``image``.

        A claim that went stale (its request ran past ``STALE_CLAIM_S``) may have been taken by a
        newer request; then this one is refused and its image is not kept, so one key never names two.
        """
        values = {
            "completed": True,
            "sha256": image.sha256,
            "image_id": image.id,
            "response_body": encode_json(summary_of(image)).decode(),
        }
        completed = session.execute(
            update(IdempotencyRecord)
            .where(col(IdempotencyRecord.key_hash) == key.key_hash, col(IdempotencyRecord.claim_token) == token)
            .values(**values)
        )
        if completed.rowcount != 1:  # type: ignore[attr-defined]
            raise IdempotencyKeyInUseError(
                f"This request outlived its {IDEMPOTENCY_HEADER} claim and a newer request took the key; use a new key."
            )

    async def prune(self) -> None:
        """Forget keys older than the TTL (best effort; the next upload with a key tries again)."""
        cutoff = utc_now() - self.ttl
        with contextlib.suppress(StorageUnavailableError):
            await self.database.write(
                lambda session: session.execute(
                    delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < cutoff)
                )
            )


def forget_image(session: Session, image_id: str) -> None:
    """Drop the keys that answered with ``image_id`` (call it in the transaction deleting the image).

    A replay must not point at a deleted image: once it is gone, its key is free for a new upload.
    """
    session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.image_id) == image_id))


class IdempotentUploads:
    """``UploadService.accept`` behind an idempotency key."""

    def __init__(self, store: IdempotencyStore, uploads: UploadService) -> None:
        self.store = store
        self.uploads = uploads

    async def accept(
        self, key: IdempotencyKey, body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]], request_id: str
    ) -> ImageSummary:
        claim = await self.store.claim(key)
        if claim.token is None:
            return await self._replay(claim.record, body, content_type)
        token = claim.token
        try:
            image = await self.uploads.accept(
                body, content_type, request_id, lambda session, image: self.store.remember(session, key, token, image)
            )
        except BaseException:
            # Only a 202 is remembered: give the key back, even when the request is being cancelled.
            with anyio.CancelScope(shield=True), contextlib.suppress(StorageUnavailableError):
                await self.store.release(key, token)
            raise
        await self.store.prune()
        return summary_of(image)

    async def _replay(
        self, record: IdempotencyRecord | None, body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]]
    ) -> ImageSummary:
        if record is None or not record.completed or record.response_body is None:
            raise IdempotencyKeyInUseError(
                f"The first request with this {IDEMPOTENCY_HEADER} is still in flight; retry when it has answered."
            )
        if await self._file_sha256(body, content_type) != record.sha256:
            raise IdempotencyKeyMismatchError(
                f"This {IDEMPOTENCY_HEADER} was used for other file bytes (image {record.image_id}); use a new key."
            )
        log.info("upload_replayed", image_id=record.image_id)
        return decode_json(record.response_body, target_type=ImageSummary)

    async def _file_sha256(self, body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]]) -> str:
        """Read the repeat's ``image`` part only to hash it; nothing is kept."""
        async with self.uploads.received_part(body, content_type) as part:
            await anyio.to_thread.run_sync(part.flush)
            return part.sha256
