"""Gateways: Castboard answering in other providers' protocols (OpenAI's Videos API, the
Sora relay's), so a script written for them works by changing its base URL. What they
make goes through the studio's own services: routed, budgeted, and shown as takes in the
Inbox episode of the series the token is bound to (studio.gateways.inbox)."""
