"""Models and placement: the card catalog, placing/creating/deleting instances, previews."""

import random
from typing import Any

import trio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from skulk.api import quota
from skulk.api.model_routes import RouteView, route_views, routes_of
from skulk.api.port import ClusterPort
from skulk.api.routes_deployments import new_deployment, new_deployment_id
from skulk.api.routing import RouteSpec, read_json_model
from skulk.errors import BadRequest, NotFound, Unavailable
from skulk.master.limits import placement_project
from skulk.master.placement import (
    PlacementError, PlacementInfoPendingError, devices_of, no_worker_nodes, place_instance, placement_previews, unavailable_nodes,
)
from skulk.master.validate import blocked_refusal, instance_refusal
from skulk.types import commands as cmd
from skulk.types.deployments import Deployment
from skulk.types.ids import SafeModelId, new_id, validate_model_id
from skulk.types.instances import Instance, InstanceMeta, Sharding
from skulk.types.models import ModelCard
from skulk.types.state import State

INFO_PENDING_WAIT_S = 15.0
PLACEMENT_POLL_S = 0.5
PENDING_RETRY_AFTER_S = 5


class PlaceInstanceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: SafeModelId
    sharding: Sharding = Sharding.Pipeline
    instance_meta: InstanceMeta = InstanceMeta.MlxRing
    min_nodes: int = Field(default=1, ge=1)
    excluded_nodes: list[str] = Field(default_factory=list)


class CreateInstanceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instance: Instance


def _port(request: Request) -> ClusterPort:
    return request.app.state.cluster


def model_entry(card: ModelCard) -> dict[str, Any]:
    tags = [t for t, on in (("tensor", card.supports_tensor), ("embedding", "TextEmbedding" in card.tasks),
                            ("thinking", "thinking" in card.capabilities)) if on]
    return {
        "id": card.model_id, "object": "model", "created": 0, "owned_by": "skulk",
        "hugging_face_id": card.model_id, "name": card.model_id.rsplit("/", 1)[-1],
        "description": card.base_model or card.model_id, "context_length": card.context_length,
        "tags": tags, "storage_size_megabytes": round(card.storage_size.in_bytes / 2**20),
        "supports_tensor": card.supports_tensor, "tasks": list(card.tasks), "is_custom": card.is_custom,
        "family": card.family, "quantization": card.quantization, "base_model": card.base_model,
        "capabilities": list(card.capabilities),
    }


async def list_models(request: Request) -> JSONResponse:
    cards = _port(request).catalog.all()
    return JSONResponse({"object": "list", "data": [model_entry(c) for c in cards]})


def route_entry(view: RouteView) -> dict[str, Any]:
    """A route in /v1/models: an OpenAI model object whose id is the route's name."""
    return {"id": view.name, "object": "model", "created": 0, "owned_by": "skulk", "route": True,
            "route_kind": view.kind, "models": list(view.models), "served_by": view.served_by}


async def list_models_and_routes(request: Request) -> JSONResponse:
    """/v1/models: the catalog, then every route and capability route (what `model` may name)."""
    port = _port(request)
    cards = port.catalog.all()
    views = route_views(port.state, routes_of(port), cards)
    return JSONResponse({"object": "list", "data": [*(model_entry(c) for c in cards), *map(route_entry, views)]})


def _unavailable(port: ClusterPort) -> dict[str, str]:
    """Cordoned/draining nodes from state, --no-worker ones from their heartbeats."""
    beats, _ = port.live_telemetry()
    return unavailable_nodes(port.state.node_maintenance, no_worker_nodes({n: b.system for n, b in beats.items()}))


def _devices(port: ClusterPort) -> dict:
    """Each live node's accelerators, from its heartbeat: a LlamaRpc driver's GPU layer split."""
    return devices_of({n: b.system for n, b in port.live_telemetry()[0].items()})


def _dry_run(port: ClusterPort, command: cmd.PlaceInstance, state: State | None = None) -> Instance:
    state = state or port.state
    return place_instance(command, state.topology, state.instances, port.node_memory(), state.node_network,
                          instance_id=new_id(), runner_ids=lambda: new_id(), ephemeral_port=49153,
                          node_names=port.node_names(), unavailable=_unavailable(port),
                          node_devices=_devices(port))


class PlacementPending(Unavailable):
    """The cluster is still converging: retry the placement shortly."""

    code = "placement_info_pending"

    def __init__(self, message: str):
        super().__init__(message)
        self.headers = {"Retry-After": str(PENDING_RETRY_AFTER_S)}


def _converging(port: ClusterPort, state: State, exc: Exception) -> bool:
    """Whether a failed dry run may succeed in a moment: info still pending, or nodes this node hears
    (or the master has seen) that are not in the topology yet, so too few nodes or too little memory
    is only a view that has not caught up."""
    if isinstance(exc, PlacementInfoPendingError):
        return True
    heard = set(port.live_telemetry()[0]) | set(state.last_seen)
    return isinstance(exc, PlacementError) and bool(heard - set(state.topology.nodes))


async def await_placeable(port: ClusterPort, command: cmd.PlaceInstance) -> None:
    """Dry-run the placement until it fits; a real refusal is raised at once (400), a converging
    view is retried for up to INFO_PENDING_WAIT_S and then answered 503 with Retry-After."""
    deadline = trio.current_time() + INFO_PENDING_WAIT_S
    while True:
        state = port.state  # one view for the try and for judging its failure
        try:
            _dry_run(port, command, state)
            return
        except (PlacementError, PlacementInfoPendingError) as exc:
            if not _converging(port, state, exc):
                raise
            if trio.current_time() >= deadline:
                raise PlacementPending(f"The cluster is still converging; retry shortly ({exc.message})") from None
        await trio.sleep(PLACEMENT_POLL_S)


async def post_place_instance(request: Request) -> JSONResponse:
    port = _port(request)
    params = await read_json_model(request, PlaceInstanceParams)
    card = port.catalog.require(params.model_id)
    key_id = quota.caller_key_id()
    placement_project(port.state, key_id)  # over the project's max_instances: 429 here (the master checks too)
    command = cmd.PlaceInstance(model_card=card, sharding=params.sharding, instance_meta=params.instance_meta,
                                min_nodes=params.min_nodes, excluded_nodes=params.excluded_nodes, key_id=key_id)
    await await_placeable(port, command)
    # a one-replica deployment: the master places it now and again after node loss or a cold restart
    deployment = Deployment(deployment_id=new_deployment_id(), model_id=card.model_id, model_card=card,
                            sharding=params.sharding, instance_meta=params.instance_meta, min_nodes=params.min_nodes,
                            excluded_nodes=params.excluded_nodes, key_id=key_id)
    create = new_deployment(port, deployment)
    await port.send_command(create)
    return JSONResponse({"message": "Command received.", "command_id": create.command_id,
                         "deployment_id": deployment.deployment_id,
                         "model_card": card.model_dump(mode="json", by_alias=True)})


async def post_instance(request: Request) -> JSONResponse:
    port = _port(request)
    params = await read_json_model(request, CreateInstanceParams)
    instance = params.instance
    validate_model_id(instance.shard_assignments.model_id)  # workers turn it into a directory
    if instance.instance_id in port.state.instances:
        raise BadRequest(f"Instance {instance.instance_id} already exists")
    # the master refuses these too; say why here
    refusal = instance_refusal(port.state, instance) or blocked_refusal(
        instance, unavailable_nodes(port.state.node_maintenance))
    if refusal is not None:
        raise BadRequest(refusal, param="instance")
    key_id = quota.caller_key_id()
    placement_project(port.state, key_id)  # over the project's max_instances: 429 here (the master checks too)
    command = cmd.CreateInstance(instance=instance, key_id=key_id)
    await port.send_command(command)
    return JSONResponse({"message": "Command received.", "command_id": command.command_id,
                         "instance_id": instance.instance_id})


async def get_instance(request: Request) -> JSONResponse:
    instance = _port(request).state.instances.get(request.path_params["instance_id"])
    if instance is None:
        raise NotFound("Instance not found")
    return JSONResponse(instance.model_dump(mode="json", by_alias=True))


async def delete_instance(request: Request) -> JSONResponse:
    port = _port(request)
    instance_id = request.path_params["instance_id"]
    if instance_id not in port.state.instances:
        raise NotFound("Instance not found")
    command = cmd.DeleteInstance(instance_id=instance_id)
    await port.send_command(command)
    return JSONResponse({"message": "Command received.", "command_id": command.command_id,
                         "instance_id": instance_id})


def _previews(request: Request) -> list:
    port = _port(request)
    model_id = request.query_params.get("model_id")
    if not model_id:
        raise BadRequest("model_id is required", param="model_id")
    card = port.catalog.require(model_id)
    excluded = [n for n in request.query_params.get("excluded_node_ids", "").split(",") if n]
    state = port.state
    return placement_previews(card, state.topology, port.node_memory(), state.node_network, state.instances,
                              excluded, node_names=port.node_names(), ephemeral_port=random.randint(49153, 65535),
                              unavailable=_unavailable(port), node_devices=_devices(port))


async def get_previews(request: Request) -> JSONResponse:
    return JSONResponse({"previews": [p.model_dump(mode="json", by_alias=True) for p in _previews(request)]})


async def get_placement(request: Request) -> JSONResponse:
    sharding = request.query_params.get("sharding", "Pipeline")
    meta = request.query_params.get("instance_meta", "MlxRing")
    min_nodes = int(request.query_params.get("min_nodes", "1") or 1)
    port = _port(request)
    card = port.catalog.require(request.query_params.get("model_id") or "")
    try:
        command = cmd.PlaceInstance(model_card=card, sharding=Sharding(sharding), instance_meta=InstanceMeta(meta),
                                    min_nodes=min_nodes)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    instance = _dry_run(port, command)
    return JSONResponse(instance.model_dump(mode="json", by_alias=True))


ROUTES = [
    RouteSpec("GET", "/models", list_models, "Model card catalog", "models"),
    RouteSpec("GET", "/v1/models", list_models_and_routes, "Model card catalog and routes (OpenAI shape)", "models"),
    RouteSpec("POST", "/place_instance", post_place_instance, "Place a model on the cluster", "placement",
              request_model=PlaceInstanceParams, status_codes=(200, 400, 404, 503)),
    RouteSpec("POST", "/instance", post_instance, "Create an exact instance", "placement",
              request_model=CreateInstanceParams, status_codes=(200, 400)),
    RouteSpec("GET", "/instance/previews", get_previews, "Every placement option and why", "placement",
              status_codes=(200, 400, 404)),
    RouteSpec("GET", "/instance/placement", get_placement, "One concrete placement", "placement",
              status_codes=(200, 400, 404, 503)),
    RouteSpec("GET", "/instance/{instance_id}", get_instance, "One instance", "placement", status_codes=(200, 404)),
    RouteSpec("DELETE", "/instance/{instance_id}", delete_instance, "Delete an instance", "placement",
              status_codes=(200, 404)),
]
