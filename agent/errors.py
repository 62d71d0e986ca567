"""Errors, named by whose fault they are, and the middleware that renders them.

    APIError                      rendered as OpenAI's envelope {"error": {message, type, param, code}}
    ├── InvalidRequest      400   the caller sent something we cannot accept (bad field, illegal state)
    ├── Unauthorized        401   missing or wrong API key
    ├── NotFound            404   unknown id (or an object owned by another key)
    ├── PayloadTooLarge     413   body or upload over the configured limit
    ├── RateLimited         429   a per-key limit (concurrent runs) is reached; the SDK retries it
    └── ServerError         500   our fault or the infrastructure's; never carries a stack trace

A client that hangs up mid-request is not an error of ours (the request is logged as status 499).
Anything else raised by a handler is logged and becomes a plain 500 server_error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class APIError(Exception):
    status = 500
    type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(APIError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(APIError):
    status = 401
    type = "invalid_request_error"


class NotFound(APIError):
    status = 404
    type = "invalid_request_error"


class PayloadTooLarge(APIError):
    status = 413
    type = "invalid_request_error"


class RateLimited(APIError):
    """The hosted API's shape: ``type`` names the limited quantity, ``code`` is ``rate_limit_exceeded``."""

    status = 429
    type = "requests"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after


class ServerError(APIError):
    status = 500
    type = "server_error"


def not_found(kind: str, object_id: str) -> NotFound:
    """The hosted API's wording: ``No assistant found with id 'asst_…'.``"""
    if kind == "file":
        return NotFound(f"No such File object: {object_id}", param="id")
    return NotFound(f"No {kind} found with id '{object_id}'.")


def error_response(err: APIError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if isinstance(err, RateLimited) else None
    return web.json_response(err.body(), status=err.status, headers=headers)


def _from_http(exc: web.HTTPException, request: web.Request) -> APIError:
    if exc.status == 404:
        return NotFound("Invalid URL: no such route.", code="unknown_url")
    if exc.status == 405:
        err = InvalidRequest(
            f"Method {request.method} is not allowed on {request.path}.", code="method_not_allowed"
        )
        err.status = 405
        return err
    if exc.status == 413:
        return PayloadTooLarge("Request body is too large.", code="request_too_large")
    err = InvalidRequest(exc.reason or "Bad request.")
    err.status = exc.status
    return err


GONE: web.RequestKey[bool] = web.RequestKey("client_gone", bool)
"""Set on a request whose client went away before it was answered."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except APIError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http(exc, request))
    except json.JSONDecodeError:
        return error_response(InvalidRequest("We could not parse the JSON body of your request."))
    except ConnectionError:  # the client went away mid-request: nothing to answer, and not our error
        request[GONE] = True  # logged and counted as status 499 (observe.py)
        return error_response(InvalidRequest("The client closed the connection.", code="client_closed"))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ServerError("The server had an error while processing your request."))
