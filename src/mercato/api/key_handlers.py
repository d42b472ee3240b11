"""The native API's key handlers: a caller's API keys created (with an optional expiry),
listed and revoked, and an administrator's revoke of anyone's key. A revoked key is
refused at once everywhere and its open WebSockets close (``api/keywatch.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response

from mercato.api import schemas as s
from mercato.api.base import ApiBase, ApiError, Ctx, json_response
from mercato.services.auth import AuthError


class KeyHandlers(ApiBase):
    """The key routes of the table in ``app.py`` (``new_key``, ``list_keys``, ``revoke_key``,
    ``admin_revoke_key``)."""

    async def new_key(self, c: Ctx) -> Response:
        body = await c.body(s.KeyRequest)
        expires_at = _timestamp(body.expires_at) if body.expires_at is not None else None
        try:
            key_id, secret = self.auth.create_key(c.user.user_id, expires_at=expires_at)
        except AuthError as e:
            raise ApiError(409 if e.code == "too_many_keys" else 400, e.code, str(e)) from None
        out = {"key_id": key_id, "secret": secret, "expires_at": _rfc3339(expires_at)}
        return json_response(out, 201)

    async def list_keys(self, c: Ctx) -> Response:
        return json_response(
            [
                {
                    "key_id": k.key_id,
                    "created_at": _rfc3339(k.created_at),
                    "expires_at": _rfc3339(k.expires_at),
                }
                for k in self.auth.keys(c.user.user_id)
            ]
        )

    async def revoke_key(self, c: Ctx) -> Response:
        """Revoke one of the caller's keys: refused at once everywhere, and the WebSockets
        it signed in close (``api/keywatch.py``)."""
        key_id = c.request.path_params["key_id"]
        if not self.auth.revoke_key(key_id, user_id=c.user.user_id):
            raise ApiError(404, "unknown_key", "no such live key of yours")
        return json_response({"key_id": key_id, "revoked": True})

    async def admin_revoke_key(self, c: Ctx) -> Response:
        key_id = c.request.path_params["key_id"]
        if not self.auth.revoke_key(key_id):
            raise ApiError(404, "unknown_key", "no such live key")
        return json_response({"key_id": key_id, "revoked": True})


def _timestamp(text: str) -> float:
    """An RFC 3339 timestamp with its offset (``2027-01-31T00:00:00Z``) as Unix seconds."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ApiError(400, "invalid_timestamp", "an RFC 3339 time with its offset, e.g. ...Z")
    return when.timestamp()


def _rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
