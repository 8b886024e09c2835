"""One error shape for every failure: {"error": {"code", "message", "fields": [{"field", "message", "fix"}]}}.

Pydantic's errors are rewritten so a researcher can fix the spec from the response alone: the field as a dotted path
relative to the body, the message without pydantic's prefixes, and a hint (the allowed fields, the allowed values).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.queries import Conflict, NotFound, QueryError
from store.specs import JOB_KINDS, SpecError

logger = logging.getLogger(__name__)

VALUE_FIXES = {  # fixes for the specs' own checks, by the field they fail on
    "per_device_train_batch_size": "make it a multiple of num_generations (prompts per batch × num_generations)",
    "trl": "remove the refused option from trl; the message says where its setting belongs, if anywhere",
    "grid": "give at least one of lamb, beta, seed, and keep the product of the axes at 500 points or fewer",
}
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code, self.code, self.message = status_code, code, message
        self.fields = fields or []
        self.headers = headers


def error_response(
    status_code: int,
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": fields or []}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def spec_error(exc: SpecError) -> ApiError:
    """check_runnable's refusal: the shape was fine, this server cannot run it."""
    fixes = {
        "model": "use 'tiny', a hub id such as 'Qwen/Qwen2.5-0.5B-Instruct', or a path under a model root",
        "trust_remote_code": "set it to false, or ask the operator to set FRPO_ALLOW_TRUST_REMOTE_CODE=true",
    }
    fix = fixes.get(exc.field.rsplit(".", 1)[-1], f"change {exc.field}")
    return ApiError(
        422,
        "invalid_spec",
        f"the spec cannot run here: {exc.message}",
        [{"field": exc.field, "message": exc.message, "fix": fix}],
    )


# --- validation errors ----------------------------------------------------------------------------------------------


def _body_model(request: Request) -> type[BaseModel] | None:
    """The pydantic model the matched route takes as its body, if it is one model (not a union of job kinds)."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    annotation = getattr(getattr(body_field, "field_info", None), "annotation", None)
    return annotation if inspect.isclass(annotation) and issubclass(annotation, BaseModel) else None


def _walk(root: type[BaseModel] | None, path: list[str]) -> tuple[list[str], type[BaseModel] | None]:
    """`path` without the job-kind tags pydantic puts after a union (POST /jobs' body, a sweep's `base`), and the
    nested model that holds its last field (e.g. SweepSpec, ['base', 'train', 'lamb'] -> (['base', 'lamb'],
    TrainSpec))."""
    cleaned: list[str] = []
    model, holder = root, root
    for part in path:
        if model is None and part in JOB_KINDS:  # a union's tag: it names the member model, not a field
            model = holder = JOB_KINDS[part]
            continue
        cleaned.append(part)
        holder = model
        field = model.model_fields.get(part) if model is not None else None
        annotation = field.annotation if field is not None else None
        model = annotation if inspect.isclass(annotation) and issubclass(annotation, BaseModel) else None
    return cleaned, holder


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _fix(error: dict[str, Any], model: type[BaseModel] | None, field: str) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = ", ".join(model.model_fields) if model is not None else "those in the schema"
        return f"remove it; allowed fields are {allowed}"
    if kind == "union_tag_invalid":
        return f"use one of {', '.join(JOB_KINDS)}"
    if kind == "literal_error":
        return f"use one of {ctx.get('expected', 'the allowed values')}"
    if kind == "enum":
        return f"use one of {ctx.get('expected', 'the allowed values')}"
    if kind == "missing":
        return "add it"
    bounds = {
        "greater_than": "use a value greater than {gt}",
        "greater_than_equal": "use a value of at least {ge}",
        "less_than": "use a value less than {lt}",
        "less_than_equal": "use a value of at most {le}",
        "too_short": "give at least {min_length} item(s)",
        "too_long": "give at most {max_length} item(s)",
        "string_too_short": "give at least {min_length} character(s)",
        "string_too_long": "give at most {max_length} character(s)",
    }
    if kind in bounds:
        try:
            return bounds[kind].format(**{k: _number(v) for k, v in ctx.items()})
        except KeyError:
            pass
    if kind == "value_error":
        return VALUE_FIXES.get(field.rsplit(".", 1)[-1], "change the value as the message says")
    if kind.startswith(("int_", "float_")):
        return "give a number"
    if kind.startswith("bool_"):
        return "use true or false"
    if kind.startswith("string_"):
        return "give a string"
    if kind.startswith(("dict_", "model_")):
        return "give a JSON object"
    if kind.startswith("list_"):
        return "give a JSON array"
    if kind == "json_invalid":
        return "send a valid JSON body with Content-Type: application/json"
    if kind == "uuid_parsing":
        return "give a UUID such as 123e4567-e89b-12d3-a456-426614174000"
    return "see the schema at /api/v1/openapi.json"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def validation_fields(errors: list[dict[str, Any]], root: type[BaseModel] | None) -> list[dict[str, str]]:
    fields: list[dict[str, str]] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "[key]"]  # a bad dict key: name the key
        where, path = (
            (loc[0], loc[1:]) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else ("", loc)
        )
        kind = error.get("type", "")
        path, holder = _walk(root, path) if where == "body" else (path, None)
        if kind == "union_tag_invalid":
            path = path if path[-1:] == ["kind"] else [*path, "kind"]
        field = ".".join(path) if path else (where or "body")
        if where == "header":
            field = field.replace("_", "-")
        fields.append({"field": field, "message": _message(error), "fix": _fix(error, holder, field)})
    return fields


# --- handlers -------------------------------------------------------------------------------------------------------


async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers)


async def _query_error(_request: Request, exc: QueryError) -> JSONResponse:
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 400
    return error_response(status, exc.code, exc.message)


async def _spec_error(_request: Request, exc: SpecError) -> JSONResponse:
    return await _api_error(_request, spec_error(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = validation_fields(list(exc.errors()), _body_model(request))
    names = ", ".join(f["field"] for f in fields)
    return error_response(422, "validation_error", f"the request is invalid: check {names}", fields)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred; nothing was saved")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
