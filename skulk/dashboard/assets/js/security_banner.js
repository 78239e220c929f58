// Warns when this node's cluster has no secret (runtime.clusterSecured in the node diagnostics).
import { api } from "./api.js";

const RETRY_MS = 30000;

export async function checkClusterSecret() {
  const banner = document.getElementById("secret-banner");
  if (!banner) return;
  try {
    const diagnostics = await api("v1/diagnostics/node");
    // Only an explicit false shows it: an older node without the key stays quiet.
    banner.hidden = diagnostics?.runtime?.clusterSecured !== false;
  } catch {
    setTimeout(checkClusterSecret, RETRY_MS); // the node is not answering yet: ask again later
  }
}
