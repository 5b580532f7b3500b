"""Idempotency keys of POST /api/images.

Revision ID: 0004_idempotency
Revises: 0003_webhooks
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_idempotency"
down_revision = "0003_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("claim_token", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("image_id", sa.String(32), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_index("ix_idempotency_keys_image_id", "idempotency_keys", ["image_id"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
