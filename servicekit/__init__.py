"""Code both services share (problems, request ids, logging, sniffing); imports neither service."""
