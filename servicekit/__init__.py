"""Code both services share (problems, request ids, HTTP methods, logging, sniffing, API docs); imports neither."""
