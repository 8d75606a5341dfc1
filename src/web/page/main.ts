// The web view's entry point, bundled by src/web/assets.ts (style.css is bundled beside it).
import { start } from "./app.js";

start(document.getElementById("app")!);
