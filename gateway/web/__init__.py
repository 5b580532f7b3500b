"""The gallery: server-rendered pages and fragments over the same data as the JSON API."""
