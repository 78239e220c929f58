// Entry point: theme, the API key control, state polling, the pages behind the router, the no-secret banner.
import { initTheme } from "./theme.js";
import { startPolling } from "./store.js";
import { registerPage, startRouter } from "./router.js";
import { mountCluster } from "./pages/cluster.js";
import { mountModels } from "./pages/models.js";
import { mountChat } from "./pages/chat.js";
import { mountSettings } from "./pages/settings.js";
import { mountKeys } from "./pages/keys.js";
import { mountProjects } from "./pages/projects.js";
import { mountDeployments } from "./pages/deployments.js";
import { mountMetrics } from "./pages/metrics.js";
import { checkClusterSecret } from "./security_banner.js";
import { initAuth } from "./auth.js";

initTheme();
initAuth();
registerPage("cluster", mountCluster);
registerPage("models", mountModels);
registerPage("chat", mountChat);
registerPage("settings", mountSettings);
registerPage("keys", mountKeys);
registerPage("projects", mountProjects);
registerPage("deployments", mountDeployments);
registerPage("history", mountMetrics);
startPolling();
startRouter();
checkClusterSecret();
