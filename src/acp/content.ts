import { type ContentBlock, RequestError, type ToolKind } from "@agentclientprotocol/sdk";

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

/** The first line of a command (a title is one line), cut to a readable length. */
function oneLine(text: string, max = 200): string {
  const lines = text.split("\n");
  const first = lines[0]!.length > max ? `${lines[0]!.slice(0, max - 1)}…` : lines[0]!;
  return lines.length > 1 ? `${first} …` : first;
}

/** How an editor shows one of the model's tool calls: its title and kind. */
export function toolLook(tool: string, args: Record<string, unknown>): { title: string; kind: ToolKind } {
  const command = typeof args.command === "string" ? args.command : "";
  const path = typeof args.path === "string" ? args.path : "";
  switch (tool) {
    case "sh":
      return { title: oneLine(command || "sh"), kind: "execute" };
    case "env":
      return { title: oneLine(command || "env"), kind: "read" };
    case "get":
      return { title: `get ${path}`, kind: "read" };
    case "wait":
      return { title: `wait ${path}`, kind: "other" };
    default:
      return { title: tool, kind: "other" };
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
