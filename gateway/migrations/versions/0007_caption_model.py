"""What made each caption (model revision and precision next to its id), and re-captioning state.

Revision ID: 0007_caption_model
Revises: 0006_caption_search
Create Date: 2026-12-03

Existing captions keep their model id; their revision and precision stay unknown (null), so a
``recaption`` without ``--all`` re-makes them. No image is queued, so no counter needs seeding.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_caption_model"
down_revision = "0006_caption_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("caption_model_revision", sa.String(255), nullable=True))
        batch.add_column(sa.Column("caption_precision", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recaption_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recaption_error", sa.Text(), nullable=True))
    op.create_index("ix_images_recaption_status_created_at", "images", ["recaption_status", "created_at", "id"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("model", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_model", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("previous_model")
        batch.drop_column("model")
    op.drop_index("ix_images_recaption_status_created_at", "images")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ and PostgreSQL), not a batch copy: copying the
    # images table on SQLite would drop the caption search triggers of 0006 with it.
    for column in ("recaption_error", "recaption_status", "caption_precision", "caption_model_revision"):
        op.execute(f"ALTER TABLE images DROP COLUMN {column}")
