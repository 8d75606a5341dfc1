import { isAbsolute } from "node:path";
import { type ContentBlock, RequestError, type ToolKind } from "@agentclientprotocol/sdk";
import { escapeControl } from "../protocol/proposal-facts.js";

/**
 * The prompt text a run gets from an editor's content blocks: text as it is, a link to a resource as a
 * mention of its URI, an embedded resource's text in a fenced block under its URI. Images and audio are
 * not advertised, so a prompt holding one is refused.
 */
export function promptText(blocks: ContentBlock[]): string {
  const parts: string[] = [];
  for (const block of blocks) {
    switch (block.type) {
      case "text":
        parts.push(block.text);
        break;
      case "resource_link":
        parts.push(`@${block.uri}${block.name && !block.uri.endsWith(block.name) ? ` (${block.name})` : ""}`);
        break;
      case "resource": {
        const resource = block.resource;
        if ("text" in resource) parts.push(`${resource.uri}:\n\`\`\`\n${resource.text}${resource.text.endsWith("\n") ? "" : "\n"}\`\`\``);
        else parts.push(`${resource.uri} (binary, not included)`);
        break;
      }
      default:
        throw RequestError.invalidParams({ type: block.type }, `${block.type} content is not supported; Spool takes text and resources`);
    }
  }
  const text = parts.join("\n\n").trim();
  if (!text) throw RequestError.invalidParams(undefined, "the prompt is empty");
  return text;
}

/**
 * The first line of a command as a title (a title is one line): escaped like every fact (escapeControl), so no
 * control, invisible or reordering character can hide the rest, and cut to `max` characters of escaped text with
 * the cut marked plainly: "…" and how many characters of the first line and how many further lines are not shown.
 */
export function titleLine(text: string, max = 200): string {
  const lines = text.split("\n");
  const chars = [...lines[0]!];
  let shown = "";
  let kept = 0;
  for (const c of chars) {
    const piece = escapeControl(c);
    if (shown.length + piece.length > max) break;
    shown += piece;
    kept++;
  }
  const moreChars = chars.length - kept;
  const moreLines = lines.length - 1;
  if (moreChars === 0 && moreLines === 0) return shown;
  const left = [
    moreChars ? `+${moreChars} more character${moreChars === 1 ? "" : "s"}` : "",
    moreLines ? `+${moreLines} more line${moreLines === 1 ? "" : "s"}` : "",
  ].filter(Boolean);
  return `${shown}${moreChars ? "" : " "}… (${left.join(", ")})`;
}

/** How an editor shows one of the model's tool calls: its title and kind. */
export function toolLook(tool: string, args: Record<string, unknown>): { title: string; kind: ToolKind } {
  const command = typeof args.command === "string" ? args.command : "";
  const path = typeof args.path === "string" ? args.path : "";
  switch (tool) {
    case "sh":
      return { title: titleLine(command || "sh"), kind: "execute" };
    case "env":
      return { title: titleLine(command || "env"), kind: "read" };
    case "get":
      return { title: `get ${titleLine(path)}`, kind: "read" };
    case "wait":
      return { title: `wait ${titleLine(path)}`, kind: "other" };
    default:
      return { title: titleLine(tool), kind: "other" };
  }
}

/** Whether a tool runs a command, so it has a producer whose output streams. */
export const isCommandTool = (tool: string) => tool === "sh" || tool === "env";

/** At most `max` characters, the end kept (results and output read best from their end). */
export function tail(text: string, max = 16_000): string {
  return text.length > max ? `[… ${text.length - max} characters left out]\n${text.slice(-max)}` : text;
}

/** A fenced code block that its content cannot close early. */
export function fenced(text: string): string {
  let fence = "```";
  while (text.includes(fence)) fence += "`";
  return `${fence}\n${text}${text.endsWith("\n") || text === "" ? "" : "\n"}${fence}`;
}

/** A command's working directory as an absolute path: its `cwd` (relative to the project root, or absolute), else the root. */
export function absoluteCwd(root: string, cwd: string | null): string {
  if (!cwd) return root;
  return isAbsolute(cwd) ? cwd : `${root.replace(/\/$/, "")}/${cwd}`;
}
