import { definePlugin } from "../../plugins/plugin.js";
import { BINARY_FRAME_VERSION, type BinaryFrames } from "../../protocol/binary-frame.js";
import { buildOpenRpcDocument } from "../../rpc/discovery.js";
import { SERVER_NAME, SERVER_VERSION } from "../../version.js";
import { BINARY_FRAMES, DISCOVERY, LISTENING, rpcDiscover } from "./discover.js";
import { initialize } from "./initialize.js";
import { ping } from "./ping.js";
import { projectCreate } from "./project-create.js";
import { projectDelete } from "./project-delete.js";
import { projectList } from "./project-list.js";

/** Connection basics: ping, initialize (project binding), discovery, and the projects: listed, created by root, removed. */
export const sessionPlugin = definePlugin({
  name: "session",
  setup(app) {
    // Built once (the registry is frozen once the server starts): zod to JSON Schema for every method cost ~50 ms of
    // CPU a call, which any caller, a viewer too, could ask for again and again. The filters still run each call, on a
    // copy, as a filter may change the document it is given.
    let document: Record<string, unknown> | undefined;
    app.provide(DISCOVERY, () => {
      document ??= buildOpenRpcDocument(app.registry(), { title: SERVER_NAME, version: SERVER_VERSION });
      return app.applyFilter("rpc:discover", structuredClone(document));
    });
    let binaryFrames: BinaryFrames | undefined;
    app.provide(BINARY_FRAMES, () => {
      binaryFrames ??= {
        version: BINARY_FRAME_VERSION,
        methods: Object.fromEntries([...app.registry().methods.values()].flatMap((m) => (m.bytes ? [[m.name, m.bytes]] : []))),
      };
      return binaryFrames;
    });
    let listening: string | undefined;
    app.on("server:started", ({ url }) => {
      listening = url;
    });
    app.provide(LISTENING, () => listening);
    app.method(ping);
    app.method(initialize);
    app.method(rpcDiscover);
    app.method(projectList);
    app.method(projectCreate);
    app.method(projectDelete);
  },
});
