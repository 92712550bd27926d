"""Logging and metrics setup; imported by composition roots and the HTTP server."""
