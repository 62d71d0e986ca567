"""Errors, named by whose fault they are, and the middleware that renders them.

    APIError                      rendered as OpenAI's envelope {"error": {message, type, param, code}}
    ├── InvalidRequest      400   the caller sent something we cannot accept (bad field, illegal state)
    ├── Unauthorized        401   missing or wrong API key
    ├── NotFound            404   unknown id (or an object owned by another key)
    ├── PayloadTooLarge     413   body or upload over the configured limit
    └── ServerError         500   our fault or the infrastructure's; never carries a stack trace

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


class ServerError(APIError):
    status = 500
    type = "server_error"


def not_found(kind: str, object_id: str) -> NotFound:
    """The hosted API's wording: ``No assistant found with id 'asst_…'.``"""
    if kind == "file":
        return NotFound(f"No such File object: {object_id}", param="id")
    return NotFound(f"No {kind} found with id '{object_id}'.")


def error_response(err: APIError) -> web.Response:
    return web.json_response(err.body(), status=err.status)


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
    except ConnectionError:
        raise  # the client went away: nothing to answer, and not our error (logged as status 499)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ServerError("The server had an error while processing your request."))
