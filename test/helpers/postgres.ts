import { randomBytes } from "node:crypto";
import pg from "pg";
import { infra } from "./infra.js";

/** A new, empty database on the test PostgreSQL server; `drop` removes it (after the servers using it have stopped). */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = infra.postgresUrl!;
  const name = `spool_test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
