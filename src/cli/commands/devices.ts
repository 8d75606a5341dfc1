import { adminSubcommand, printList } from "../admin-subcommand.js";
import { type Command, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age } from "../common.js";
import { EXIT, usageError } from "../errors.js";

export const DEVICES_SPEC = defineCommand({
  name: "devices",
  usage: `spool devices [list] [--json] [--all]
       spool devices revoke NAME|ID`,
  about: `Lists the paired devices: browsers signed in to the web view with a
\`spool open\` link (or its QR code), each a credential of its own that acts as
the principal whose credential made the link, and stays signed in until it is
unused for 30 days (limits.deviceIdleMs), its credential expires or is revoked,
or it is unpaired. revoke unpairs one, by name or id: its pages close at once,
on every server sharing the database. A lost phone: revoke it here. Without
--all, the devices of this command's own credential; --all (admin) every one
its scope covers (an admin scoped to projects: its projects' principals').`,
  connects: true,
  options: {
    all: { type: "boolean", help: "every principal's devices your scope covers (admin only)" },
    ...JSON_OPTION,
  },
});

export async function devices(argv: string[]): Promise<number> {
  // `spool devices` and `spool devices --json` list.
  const started = adminSubcommand(DEVICES_SPEC, argv[0] === undefined || (argv[0].startsWith("--") && argv[0] !== "--help") ? ["list", ...argv] : argv);
  if (typeof started === "number") return started;
  const { sub, values, positionals, only, request } = started;
  switch (sub) {
    case "list": {
      only([]);
      const { devices } = await request((c) => c.call("device/list", values.all ? { all: true } : {}));
      return printList(
        devices,
        values.json,
        "no paired devices — `spool open --qr` pairs one (a phone's camera reads the code)",
        ["id", "name", "principal", "created", "last seen", "from", "expires"],
        (d) => ({
          id: d.id,
          name: d.name,
          principal: `${d.principal} (${d.role})`,
          created: age(d.createdAt),
          "last seen": age(d.lastSeenAt),
          from: d.lastAddress ?? "",
          expires: new Date(d.expiresAt).toISOString().slice(0, 16).replace("T", " "),
        }),
      );
    }
    case "revoke": {
      only(["NAME|ID"]);
      const { device, closed } = await request((c) => c.call("device/revoke", { device: positionals[0]! }));
      process.stdout.write(
        `unpaired ${device.name} (${device.id}, ${device.principal})${closed ? `: closed ${closed} page connection${closed === 1 ? "" : "s"}` : ""}\n`,
      );
      return EXIT.ok;
    }
    default:
      throw usageError(`spool devices: unknown subcommand "${sub}" (list or revoke)`);
  }
}

export const DEVICES: Command = { spec: DEVICES_SPEC, run: devices };
