// Pure views of the /state document: nodes, edges, instances and runner statuses.

/** A tagged value {"Tag": {...}} -> ["Tag", {...}]; anything else -> [null, value]. */
export function untag(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && /^[A-Z]/.test(keys[0])) return [keys[0], value[keys[0]] ?? {}];
  }
  return [null, value];
}

const bytes = (memory) => memory?.inBytes ?? null;

export function nodeName(state, nodeId) {
  return state?.nodeIdentities?.[nodeId]?.friendlyName || nodeId?.slice(-8) || "?";
}

function gpuOf(system) {
  const acc = system?.accelerator;
  if (!acc) return null;
  return { name: acc.name, vendor: acc.vendor, utilization: acc.utilizationRatio,
    vramTotal: acc.vramTotalBytes, vramUsed: acc.vramUsedBytes, temperature: acc.temperatureCelsius,
    power: acc.powerWatts };
}

/** Every node the cluster knows, with telemetry when it has any; sorted by name. */
export function nodesOf(state) {
  if (!state) return [];
  const ids = new Set([...(state.topology?.nodes || []), ...Object.keys(state.nodeIdentities || {})]);
  const nodes = [...ids].map((id) => {
    const identity = state.nodeIdentities?.[id] || {};
    const memory = state.nodeMemory?.[id];
    const system = state.nodeSystem?.[id];
    const total = bytes(memory?.ramTotal);
    const available = bytes(memory?.ramAvailable);
    return {
      id, name: nodeName(state, id), hostname: identity.hostname, chip: identity.chip,
      os: identity.osVersion, version: identity.skulkVersion,
      memTotal: total, memAvailable: available, memUsed: total !== null && available !== null ? total - available : null,
      cpu: system ? system.pcpuUsage : null, cpuCount: system?.cpuCount ?? null,
      temp: system && system.temp > 0 ? system.temp : null, gpu: gpuOf(system),
      diskFree: bytes(state.nodeDisk?.[id]?.available), diskTotal: bytes(state.nodeDisk?.[id]?.total),
      health: state.nodeHealth?.[id] || { level: "ok", reasons: [] },
      isMaster: id === state.masterNodeId, hasTelemetry: Boolean(memory),
      maintenance: state.nodeMaintenance?.[id] || null, hasWorker: system ? system.hasWorker !== false : true,
    };
  });
  return nodes.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/** Undirected edges from topology.connections; `both` when each side sees the other. */
export function edgesOf(state) {
  const conns = state?.topology?.connections || {};
  const edges = new Map();
  for (const [src, sinks] of Object.entries(conns)) {
    for (const [dst, list] of Object.entries(sinks || {})) {
      if (src === dst) continue;
      const key = [src, dst].sort().join("|");
      const labels = (list || []).map((c) => {
        const [tag, body] = untag(c);
        return body?.sinkMultiaddr || tag || "link";
      });
      const edge = edges.get(key) || { a: [src, dst].sort()[0], b: [src, dst].sort()[1], dirs: new Set(), labels: [] };
      edge.dirs.add(src);
      edge.labels.push(...labels);
      edges.set(key, edge);
    }
  }
  return [...edges.values()].map((e) => ({ a: e.a, b: e.b, both: e.dirs.size > 1, labels: [...new Set(e.labels)] }));
}

const STATUS_LABELS = {
  RunnerIdle: "idle", RunnerConnecting: "connecting", RunnerConnected: "connected",
  RunnerLoading: "loading", RunnerLoaded: "loaded", RunnerWarmingUp: "warming up",
  RunnerReady: "ready", RunnerRunning: "running", RunnerShuttingDown: "shutting down",
  RunnerShutdown: "shut down", RunnerFailed: "failed",
};

/** {label, tone, detail} for a tagged runner status (or a missing one). */
export function runnerStatus(status) {
  if (!status) return { tag: null, label: "waiting", tone: "muted", detail: "No status reported yet" };
  const [tag, body] = untag(status);
  const label = STATUS_LABELS[tag] || tag || "unknown";
  let detail = "";
  if (tag === "RunnerLoading" && body.totalLayers) detail = `${body.layersLoaded}/${body.totalLayers} layers`;
  if (tag === "RunnerFailed") detail = body.errorMessage || "failed";
  const tone = tag === "RunnerFailed" ? "err" : tag === "RunnerReady" || tag === "RunnerRunning" ? "ok" : "warn";
  return { tag, label, tone, detail };
}

function shardOf(shard) {
  const [tag, body] = untag(shard);
  return { kind: tag ? tag.replace("ShardMetadata", "") : "?", rank: body.deviceRank ?? 0,
    world: body.worldSize ?? 1, start: body.startLayer, end: body.endLayer, layers: body.nLayers };
}

/** One instance's overall status from its runners. */
export function instanceStatus(runners) {
  const tags = runners.map((r) => r.status.tag);
  if (tags.includes("RunnerFailed")) return { label: "failed", tone: "err" };
  if (tags.length && tags.every((t) => t === "RunnerReady" || t === "RunnerRunning")) {
    return { label: tags.includes("RunnerRunning") ? "running" : "ready", tone: "ok" };
  }
  if (tags.every((t) => t === null)) return { label: "waiting for runners", tone: "muted" };
  const busiest = runners.find((r) => r.status.tag && r.status.tone === "warn");
  return { label: busiest ? busiest.status.label : "starting", tone: "warn" };
}

/** Placed instances with per-runner rows, sorted by model then id. */
export function instancesOf(state) {
  const list = [];
  for (const [id, wrapped] of Object.entries(state?.instances || {})) {
    const [tag, inst] = untag(wrapped);
    const assign = inst.shardAssignments || {};
    const runners = Object.entries(assign.nodeToRunner || {}).map(([nodeId, runnerId]) => ({
      runnerId, nodeId, nodeName: nodeName(state, nodeId),
      shard: shardOf(assign.runnerToShard?.[runnerId]), status: runnerStatus(state.runners?.[runnerId]),
    })).sort((a, b) => a.shard.rank - b.shard.rank);
    list.push({ id, type: (tag || "").replace("Instance", ""), modelId: assign.modelId,
      sharding: runners[0]?.shard.kind || "?", runners, status: instanceStatus(runners),
      contextLimit: inst.contextTokenLimit });
  }
  return list.sort((a, b) => (a.modelId || "").localeCompare(b.modelId || "") || a.id.localeCompare(b.id));
}

/** Model ids that have an instance, with whether one of them is ready to serve. */
export function servedModels(state) {
  const models = new Map();
  for (const inst of instancesOf(state)) {
    const ready = inst.status.tone === "ok";
    models.set(inst.modelId, (models.get(inst.modelId) || false) || ready);
  }
  return [...models.entries()].map(([id, ready]) => ({ id, ready }));
}
