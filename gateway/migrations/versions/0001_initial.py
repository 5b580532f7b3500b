"""Initial schema: images and rejection counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

REJECTION_REASONS = ("too_large", "unsupported_format", "unreadable", "bad_request")


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("orientation", sa.Integer(), nullable=True),
        sa.Column("taken_at", sa.String(40), nullable=True),
        sa.Column("camera_make", sa.String(255), nullable=True),
        sa.Column("camera_model", sa.String(255), nullable=True),
        sa.Column("file_datetime", sa.String(40), nullable=True),
        sa.Column("metadata_done", sa.Boolean(), nullable=False),
        sa.Column("small_width", sa.Integer(), nullable=True),
        sa.Column("small_height", sa.Integer(), nullable=True),
        sa.Column("medium_width", sa.Integer(), nullable=True),
        sa.Column("medium_height", sa.Integer(), nullable=True),
        sa.Column("caption_text", sa.Text(), nullable=True),
        sa.Column("caption_status", sa.String(16), nullable=False),
        sa.Column("caption_model", sa.String(255), nullable=True),
        sa.Column("caption_error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processing_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("decode_ms", sa.Float(), nullable=True),
        sa.Column("metadata_ms", sa.Float(), nullable=True),
        sa.Column("thumbnails_ms", sa.Float(), nullable=True),
        sa.Column("caption_ms", sa.Float(), nullable=True),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_images_status", "images", ["status"])
    op.create_index("ix_images_created_at", "images", ["created_at"])
    op.create_index("ix_images_sha256", "images", ["sha256"])
    op.create_index("ix_images_caption_status", "images", ["caption_status"])
    op.create_index("ix_images_lease_expires_at", "images", ["lease_expires_at"])
    rejections = op.create_table(
        "rejection_counts",
        sa.Column("reason", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.bulk_insert(rejections, [{"reason": reason, "count": 0} for reason in REJECTION_REASONS])


def downgrade() -> None:
    op.drop_table("rejection_counts")
    op.drop_table("images")
