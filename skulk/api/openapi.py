"""Builds the OpenAPI 3.1 document from the route table."""

import re
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

from skulk import __version__
from skulk.api.routing import RouteSpec

_REF = "#/components/schemas/{model}"
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["integer", "string", "null"]},
    }, "required": ["message", "type"]}},
    "required": ["error"],
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, by_alias=True)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _path_params(path: str) -> list[dict[str, Any]]:
    names = re.findall(r"{([^}:]+)(?::[^}]+)?}", path)
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]


def _operation(spec: RouteSpec, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": spec.summary, "tags": [spec.tag],
                          "operationId": f"{spec.method.lower()}_{spec.handler.__name__}"}
    params = _path_params(spec.path)
    if params:
        op["parameters"] = params
    if spec.request_model is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _schema_ref(spec.request_model, components)}}}
    responses: dict[str, Any] = {}
    for code in spec.status_codes:
        desc = spec.responses.get(code, HTTPStatus(code).phrase)
        if code < 400:
            content = ({"application/json": {"schema": _schema_ref(spec.response_model, components)}}
                       if spec.response_model else {"application/json": {"schema": {}}})
        else:
            content = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}
        responses[str(code)] = {"description": desc, "content": content}
    op["responses"] = responses
    return op


def build_openapi(routes: list[RouteSpec]) -> dict[str, Any]:
    components: dict[str, Any] = {"ErrorResponse": _ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        if not spec.include_in_schema:
            continue
        path = re.sub(r"{([^}:]+):[^}]+}", r"{\1}", spec.path)
        paths.setdefault(path, {})[spec.method.lower()] = _operation(spec, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Skulk API", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
