"""Castboard's public API for scripts and pipelines: tokens, the REST API under /api/v1/
(studio.api.app), and what every token-authenticated request goes through
(studio.api.middleware: authentication, rate limits, idempotency, the call log)."""
