import { definePlugin } from "../../plugins/plugin.js";
import { buildOpenRpcDocument } from "../../rpc/discovery.js";
import { SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { DISCOVERY, rpcDiscover } from "./discover.js";
import { initialize } from "./initialize.js";
import { ping } from "./ping.js";
import { projectList } from "./project-list.js";

/** Connection basics: ping, initialize (project binding), discovery and the list of projects to choose from. */
export const sessionPlugin = definePlugin({
  name: "session",
  setup(app) {
    app.provide(DISCOVERY, () => app.applyFilter("rpc:discover", buildOpenRpcDocument(app.registry(), { title: SERVER_NAME, version: SERVER_VERSION })));
    app.method(ping);
    app.method(initialize);
    app.method(rpcDiscover);
    app.method(projectList);
  },
});
