/** The agent's tool that searches a stored output (src/agent/grep-tool.ts), named where a view of one was cut. */
export const SEARCH_TOOL = "grep";
