"""The errors a client call raises: one class per kind of refusal, all ``MercatoError``."""

from __future__ import annotations

from typing import Final


class MercatoError(Exception):
    """The server answered with an error: HTTP status, machine-readable code, message.

    ``code`` is the API's reason (``insufficient_buying_power``, ``unknown_order``, ...);
    for an answer that is not the API's JSON error shape it is ``http_<status>``.
    """

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"{status} {code}: {message}" if message else f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status!r}, {self.code!r}, {self.message!r})"


class BadRequest(MercatoError):
    """400: the request was malformed (unknown field, bad number, bad query)."""


class Unauthorized(MercatoError):
    """401: no credentials, or an unknown / revoked key or a wrong secret."""


class Forbidden(MercatoError):
    """403: signed in, but not allowed (an administrators-only route)."""


class NotFound(MercatoError):
    """404: no such thing, or one that is not the caller's (the API answers alike)."""


class Conflict(MercatoError):
    """409: the request clashes with the current state (duplicate, no longer open)."""


class RiskRejected(MercatoError):
    """422: refused by the core (risk, validation or state): ``code`` says why."""


class RateLimited(MercatoError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, if given."""

    def __init__(
        self, status: int, code: str, message: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


ERRORS: Final[dict[int, type[MercatoError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: RiskRejected,
}
