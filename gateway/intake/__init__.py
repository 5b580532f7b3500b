"""Taking uploads in: the streamed upload, its checks and insert, and Idempotency-Key handling."""
