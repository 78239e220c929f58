// Entry point: theme, state polling, and the four pages behind the router.
import { initTheme } from "./theme.js";
import { startPolling } from "./store.js";
import { registerPage, startRouter } from "./router.js";
import { mountCluster } from "./pages/cluster.js";
import { mountModels } from "./pages/models.js";
import { mountChat } from "./pages/chat.js";
import { mountSettings } from "./pages/settings.js";

initTheme();
registerPage("cluster", mountCluster);
registerPage("models", mountModels);
registerPage("chat", mountChat);
registerPage("settings", mountSettings);
startPolling();
startRouter();
