// Entry point: theme, state polling, the four pages behind the router, the no-secret banner.
import { initTheme } from "./theme.js";
import { startPolling } from "./store.js";
import { registerPage, startRouter } from "./router.js";
import { mountCluster } from "./pages/cluster.js";
import { mountModels } from "./pages/models.js";
import { mountChat } from "./pages/chat.js";
import { mountSettings } from "./pages/settings.js";
import { checkClusterSecret } from "./security_banner.js";

initTheme();
registerPage("cluster", mountCluster);
registerPage("models", mountModels);
registerPage("chat", mountChat);
registerPage("settings", mountSettings);
startPolling();
startRouter();
checkClusterSecret();
