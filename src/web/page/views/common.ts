import { h } from "../dom.js";
import { age, escapeControl, hasControl } from "../format.js";

/** Escaped text, marked when escaping changed it so people notice hidden characters. */
export function shown(text: string, cls = ""): HTMLElement {
  const marked = hasControl(text);
  return h("span", { class: `${cls}${marked ? " escaped" : ""}`, title: marked ? "contains control characters, shown escaped" : null }, escapeControl(text));
}

/** How long ago, kept current by the page (time[data-since]). */
export function since(time: number): HTMLElement {
  return h("time", { "data-since": time, datetime: new Date(time).toISOString(), title: new Date(time).toLocaleString() }, age(time));
}
