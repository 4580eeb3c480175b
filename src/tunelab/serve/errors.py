"""Every error the API returns has OpenAI's shape: ``{"error": {message, type, param, code}}``.

Handlers are installed for our own exceptions, FastAPI's validation errors (bad JSON: 400,
wrong field type or range: 422), routing errors (404/405) and, as a last resort, anything else
(500), so no request can take the server down or answer with an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tunelab.errors import ConfigError, ModelError, TuneLabError
from tunelab.infer.request import RequestError

log = logging.getLogger("tunelab.serve")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
          405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
          503: "server_error", 500: "server_error"}


def error_body(message: str, status: int, *, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """The OpenAI error object. Text that echoes a request (a model name, a field path) may hold
    lone surrogates that UTF-8 cannot carry; they are written as escapes."""
    return {"error": {"message": _printable(message), "type": _TYPES.get(status, "invalid_request_error"),
                      "param": _printable(param), "code": code}}


def _printable(text: str | None) -> str | None:
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(message: str, status: int, **fields: Any) -> JSONResponse:
    return JSONResponse(error_body(message, status, **fields), status_code=status)


def exception_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) for an exception raised while serving a request (also used mid-stream)."""
    if isinstance(exc, RequestError):
        return exc.status, error_body(exc.problem + (f" ({exc.hint})" if exc.hint else ""),
                                      exc.status, param=exc.param, code=exc.code)
    if isinstance(exc, ConfigError):
        param = exc.where.strip("'") if exc.where else None
        return 400, error_body(exc.problem, 400, param=param, code="invalid_value")
    if isinstance(exc, ModelError):
        return 503, error_body(str(exc), 503, code="model_error")
    if isinstance(exc, TuneLabError):
        return 400, error_body(str(exc), 400)
    log.exception("unexpected error while serving a request", exc_info=exc)
    return 500, error_body(f"internal error: {type(exc).__name__}", 500, code="internal_error")


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return error_response(f"the request body is not valid JSON: {first.get('msg', '')}", 400,
                              code="invalid_json")
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    if first.get("type") == "missing" and not location:
        return error_response("the request needs a JSON body", 400, code="invalid_json")
    message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "invalid")
    return error_response(message, 422, param=param, code="invalid_value")


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 401: "invalid_api_key"}.get(exc.status_code)
    response = error_response(str(exc.detail), exc.status_code, code=code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _any_error(request: Request, exc: Exception) -> JSONResponse:
    status, body = exception_body(exc)
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(TuneLabError, _any_error)
    app.add_exception_handler(Exception, _any_error)
