"""The one table of which role each route needs: method + path template -> public | user | admin.

Read by the auth middleware before routing, so templates are matched here. First match wins; a
route not listed needs an admin key (new routes are closed until someone opens them here).
"""

import re
from functools import lru_cache
from typing import Literal

from starlette.routing import compile_path

Level = Literal["public", "user", "admin"]
NEGOTIATED_PAGES = ("/models",)  # a page for a browser, the catalog for an API client
PAGES = ("/", "/cluster", "/chat", "/settings", "/model-store", "/operator", "/keys", "/projects", "/deployments", "/history")

_TABLE: list[tuple[str, str, Level]] = [
    # liveness and the dashboard's shell: a browser loads these before it can ask for a key
    ("GET", "/health", "public"), ("GET", "/ready", "public"), ("GET", "/node_id", "public"),
    ("GET", "/assets/{path:path}", "public"),
    *[("GET", p, "public") for p in PAGES], *[("GET", f"{p}/", "public") for p in PAGES if p != "/"],
    ("GET", "/models/", "public"),
    # inference: any key (the model is checked by the route, see auth.require_model)
    ("POST", "/v1/chat/completions", "user"), ("POST", "/v1/responses", "user"),
    ("POST", "/v1/messages", "user"), ("POST", "/v1/embeddings", "user"),
    ("POST", "/v1/cancel/{command_id}", "user"),
    ("GET", "/models", "user"), ("GET", "/v1/models", "user"),
    ("GET", "/v1/routes", "user"), ("PUT", "/v1/routes", "admin"),
    ("GET", "/ollama/", "user"), ("GET", "/ollama/api/version", "user"),
    *[("POST", f"/ollama/api{mid}/{name}", "user")
      for mid in ("", "/api", "/v1") for name in ("chat", "generate")],
    *[("GET", f"/ollama/api{mid}/tags", "user") for mid in ("", "/api", "/v1")],
    ("POST", "/ollama/api/show", "user"), ("GET", "/ollama/api/ps", "user"),
    ("POST", "/ollama/api/embed", "user"), ("POST", "/ollama/api/embeddings", "user"),
    # read-only views a user key may see (no secrets in them)
    ("GET", "/instance/previews", "user"), ("GET", "/instance/{instance_id}", "user"),
    ("GET", "/store/registry", "user"), ("GET", "/store/health", "user"),
    # everything that acts, and the rest, is admin: listed for the reader, the default anyway
    ("POST", "/bench/chat/completions", "admin"),
    ("GET", "/v1/keys", "admin"), ("POST", "/v1/keys", "admin"), ("DELETE", "/v1/keys/{key_id}", "admin"),
    ("GET", "/v1/projects", "admin"), ("POST", "/v1/projects", "admin"),
    ("GET", "/v1/projects/{name}", "admin"), ("DELETE", "/v1/projects/{name}", "admin"),
    ("GET", "/v1/usage", "admin"), ("GET", "/v1/audit", "admin"),
    ("GET", "/v1/metrics/history", "admin"), ("POST", "/admin/purge", "admin"),
    ("GET", "/v1/deployments", "admin"), ("POST", "/v1/deployments", "admin"),
    ("GET", "/v1/deployments/{deployment_id}", "admin"), ("DELETE", "/v1/deployments/{deployment_id}", "admin"),
    ("POST", "/v1/deployments/{deployment_id}/{action}", "admin"),
]
_COMPILED = [(method, compile_path(path)[0], level) for method, path, level in _TABLE]


def level_for(method: str, path: str, accept: str = "") -> Level:
    """As required_level, but /models asked for by a browser is the Models page (public)."""
    if path in NEGOTIATED_PAGES and method in ("GET", "HEAD") and "text/html" in accept:
        return "public"
    return required_level(method, path)


@lru_cache(maxsize=4096)
def required_level(method: str, path: str) -> Level:
    """The role `method path` needs; HEAD reads like GET, and unknown routes need admin."""
    method = "GET" if method == "HEAD" else method
    for m, regex, level in _COMPILED:
        if m == method and regex.match(path):
            return level
    return "admin"


def route_table() -> list[tuple[str, str, Level]]:
    return list(_TABLE)


def is_inference_path(path: str) -> bool:
    return bool(_INFERENCE.match(path))


_INFERENCE = re.compile(r"^/(v1/(chat/completions|responses|messages|embeddings)|ollama/.*)$")
