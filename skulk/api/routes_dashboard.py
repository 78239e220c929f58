"""The web dashboard: index.html for the app's pages, and its static assets.

Only the page paths below and /assets/... are served, so any other path still gets the JSON
404 envelope. The base path (for a reverse proxy that strips a prefix) is injected into
index.html as <base href>, which every asset and API URL of the app is relative to.
"""

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from skulk.api import routes_instances
from skulk.api.routing import RouteSpec
from skulk.errors import NotFound

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
ASSETS_DIR = DASHBOARD_DIR / "assets"
PAGES = ("cluster", "models", "chat", "settings", "keys", "projects", "deployments", "history")
# Deep links older Skulk clients and bookmarks use; the app maps them onto its own pages (router.js).
LEGACY_PAGES = ("model-store", "operator")
SHARED_WITH_API = ("models",)  # page paths that are also API paths (see NEGOTIATED)
BASE_MARKER = '<base href="/">'
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
               ".json": "application/json", ".html": "text/html", ".png": "image/png"}
NO_CACHE = {"Cache-Control": "no-cache"}


def normalize_base_path(raw: str) -> str:
    """'' or '/' -> '/'; 'skulk', '/skulk', '/skulk/' -> '/skulk/' (what <base href> needs)."""
    parts = [p for p in (raw or "").strip().split("/") if p]
    return "/" + "".join(f"{p}/" for p in parts)


def render_index(base_path: str) -> str:
    text = (DASHBOARD_DIR / "index.html").read_text(encoding="utf-8")
    href = html.escape(normalize_base_path(base_path), quote=True)
    return text.replace(BASE_MARKER, f'<base href="{href}">', 1)


async def get_index(request: Request) -> HTMLResponse:
    base = getattr(request.app.state, "dashboard_base_path", "")
    return HTMLResponse(render_index(base), headers=NO_CACHE)


async def get_asset(request: Request) -> FileResponse:
    rel = request.path_params["path"]
    target = (ASSETS_DIR / rel).resolve()
    # Refuse anything that escapes the assets folder (../) or is not a plain file.
    if not target.is_relative_to(ASSETS_DIR) or not target.is_file():
        raise NotFound(f"No dashboard asset {rel}")
    media = MEDIA_TYPES.get(target.suffix, "application/octet-stream")
    return FileResponse(target, media_type=media, headers=NO_CACHE)


def wants_html(request: Request) -> bool:
    """A browser navigating to the page (not fetch, curl or an API client, which send */* or JSON)."""
    return "text/html" in request.headers.get("accept", "")


async def get_models_or_page(request: Request) -> Response:
    # /models is both the catalog API and the Models page's deep link: the Accept header decides.
    response = await get_index(request) if wants_html(request) else await routes_instances.list_models(request)
    response.headers["Vary"] = "Accept"
    return response


def _page_routes() -> list[RouteSpec]:
    pages = PAGES + LEGACY_PAGES
    paths = ["/"] + [f"/{p}" for p in pages if p not in SHARED_WITH_API] + [f"/{p}/" for p in pages]
    return [RouteSpec("GET", path, get_index, "Dashboard page", "dashboard", include_in_schema=False)
            for path in paths]


# Must be registered before the API routes of the same path.
NEGOTIATED = [
    RouteSpec("GET", "/models", get_models_or_page, "Model catalog, or the Models page for a browser",
              "dashboard", include_in_schema=False),
]

ROUTES = [
    *_page_routes(),
    RouteSpec("GET", "/assets/{path:path}", get_asset, "Dashboard static file", "dashboard",
              include_in_schema=False, status_codes=(200, 404)),
]
