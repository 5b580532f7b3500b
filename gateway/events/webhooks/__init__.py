"""Signed webhooks: events fanned out to a durable outbox, delivered at least once (Standard Webhooks)."""
