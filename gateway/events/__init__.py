"""What leaves the gateway when an image changes: the SSE feed's wake-ups and pruning, and webhooks."""
