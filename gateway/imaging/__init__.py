"""Pure image work: format checks, strict JPEG and PNG decoding, metadata and thumbnails."""
