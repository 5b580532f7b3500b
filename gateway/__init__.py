"""The gateway service: uploads, durable background processing, metadata, thumbnails, stats."""
