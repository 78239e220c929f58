"""The HTTP API: starlette routes by area, one error mapping, an OpenAPI document."""
