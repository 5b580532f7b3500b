"""The inference replicas: the client (the one place with retries), the pool, each replica's state, discovery."""
