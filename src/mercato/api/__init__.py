"""The gateway: the REST API (and, next, WebSocket and the Alpaca-compatible surface)."""
