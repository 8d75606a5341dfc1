import { projectList } from "../../methods/project/list.js";
import { DISCOVERY, rpcDiscover } from "../../methods/rpc/discover.js";
import { initialize } from "../../methods/session/initialize.js";
import { ping } from "../../methods/session/ping.js";
import { buildOpenRpcDocument } from "../../rpc/discovery.js";
import { SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { definePlugin } from "../plugin.js";

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
