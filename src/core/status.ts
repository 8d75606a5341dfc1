// The statuses are part of the wire and live in src/protocol; the server's code keeps importing them from here.
export { channelOpen, ENTRY, entryStatusWord, OPEN_CHANNEL, OPEN_RUN, RUN, runStatusWord, STATUS } from "../protocol/status.js";
