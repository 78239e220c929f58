"""Builds the starlette app from the route groups and serves it with hypercorn on trio."""

from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skulk.api import routes_chat, routes_cluster, routes_config, routes_dashboard, routes_instances
from skulk.api import routes_embeddings, routes_ollama
from skulk.api import routes_anthropic, routes_responses
from skulk.api import routes_node, routes_store
from skulk.api import routes_health, routes_keys, routes_ops, routes_traces
from skulk.api import routes_audit, routes_projects, routes_usage
from skulk.api import routes_maintenance, routes_warm
from skulk.api import routes_deployments
from skulk.api import routes_metrics_history, routes_purge
from skulk.api import routes_routes
from skulk.api.audit import AuditLog, AuditMiddleware
from skulk.api.quota import QuotaMiddleware
from skulk.api.gateway import GatewayMiddleware
from skulk.api.auth import AccessMiddleware
from skulk.state.api_keys import KeyUsage
from skulk.api.body_limit import BodyLimitMiddleware
from skulk.api.errors import EXCEPTION_HANDLERS
from skulk.api.limits import api_settings
from skulk.api.metrics import RequestMetricsMiddleware, metrics_for
from skulk.api.openapi import build_openapi
from skulk.api.model_routes import is_route_name, routes_of
from skulk.api.port import ClusterPort
from skulk.api.priority import PriorityMiddleware
from skulk.api.routing import RouteSpec

# First match wins: the dashboard's Accept-negotiated paths (/models) go first, and its pages and
# assets last, after every API route.
ROUTE_GROUPS: list[list[RouteSpec]] = [routes_dashboard.NEGOTIATED, routes_cluster.ROUTES, routes_instances.ROUTES,
                                       routes_chat.ROUTES, routes_responses.ROUTES, routes_anthropic.ROUTES, routes_config.ROUTES,
                                       routes_embeddings.ROUTES, routes_ollama.ROUTES, routes_store.ROUTES, routes_node.ROUTES,
                                       routes_ops.ROUTES, routes_traces.ROUTES, routes_keys.ROUTES, routes_health.ROUTES,
                                       routes_projects.ROUTES, routes_usage.ROUTES, routes_audit.ROUTES, routes_routes.ROUTES,
                                       routes_maintenance.ROUTES, routes_warm.ROUTES, routes_deployments.ROUTES,
                                       routes_metrics_history.ROUTES, routes_purge.ROUTES,
                                       routes_dashboard.ROUTES]


def all_routes() -> list[RouteSpec]:
    return [spec for group in ROUTE_GROUPS for spec in group]


def create_app(cluster: ClusterPort, *, dashboard_base_path: str = "", bind_host: str | None = None) -> Starlette:
    """`bind_host` is where the API listens (None: an in-process app, e.g. a test client)."""
    specs = all_routes()
    openapi: dict = {}  # built on first request: ~50 ms that a (re)starting node need not wait for

    async def get_openapi(request: Request) -> JSONResponse:
        if not openapi:
            openapi.update(build_openapi(specs))
        return JSONResponse(openapi)

    usage = KeyUsage()  # the node sends these last-used times to the master (app.state.key_usage)
    routes = [Route(s.path, s.handler, methods=[s.method, *s.extra_methods]) for s in specs]
    audit = AuditLog(getattr(cluster, "audit_path", None), cluster.node_id)  # None: kept in memory only
    routes.append(Route("/api/openapi.json", get_openapi, methods=["GET"]))
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        # CORS outermost so its preflight answers need no key; no origin is granted unless listed.
        middleware=[Middleware(CORSMiddleware, allow_origins=list(api_settings(cluster).cors_origins),
                               allow_methods=["GET", "POST", "PUT", "DELETE"],
                               allow_headers=["authorization", "x-api-key", "content-type", "x-skulk-priority"]),
                    Middleware(BodyLimitMiddleware, limit=lambda: api_settings(cluster).max_body_bytes),
                    Middleware(AccessMiddleware, state=lambda: cluster.state, bind_host=bind_host, usage=usage,
                               is_route=lambda name: is_route_name(name, routes_of(cluster))),
                    Middleware(RequestMetricsMiddleware, metrics=metrics_for(cluster)),
                    Middleware(GatewayMiddleware, enabled=lambda: api_settings(cluster).gateway_enabled),
                    Middleware(QuotaMiddleware, port=cluster), Middleware(AuditMiddleware, log_=audit),
                    Middleware(PriorityMiddleware, port=cluster)],
    )
    app.state.cluster = cluster
    app.state.key_usage = usage
    app.state.audit = audit
    app.state.dashboard_base_path = dashboard_base_path
    return app


async def serve_api(app: Starlette, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    await serve(app, config, task_status=task_status)  # type: ignore[arg-type]


def serve_api_task(app: Starlette, host: str, port: int):
    return partial(serve_api, app, host, port)
