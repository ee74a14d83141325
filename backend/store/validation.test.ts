// validate-device does the same work for every credential refusal (docs/07 "No oracle"): an
// unknown device id — well-formed or not — costs the same one query and the same token compare
// as a known device with a wrong token, and a disabled, revoked or expired device is refused
// only after its token was compared, in that same one query.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Database, Query } from "../db/database.ts";
import { testDatabases } from "../db/testing.ts";
import { tokenMatches } from "../secrets.ts";
import { createDevice, revokeDevices } from "./devices.ts";
import { validateDevice } from "./validation.ts";

for (const tdb of testDatabases()) {
  describe(`validate-device on ${tdb.name}: the same work for every refusal`, () => {
    let db: Database;
    before(async () => {
      db = await tdb.open();
    });
    after(() => db?.close());

    /** validateDevice with its queries and token compares recorded. */
    async function traced(device_id: string, token: string) {
      const queries: string[] = [];
      const compares: Array<{ digest: string; matched: boolean }> = [];
      const watched = Object.create(db, {
        query: { value: (q: Query) => (queries.push(q.text.trim().slice(0, 40)), db.query(q)) },
      }) as Database;
      const r = await validateDevice(watched, { device_id, token }, { staleAfterSec: 60, now: new Date() }, {
        tokenMatches: (presented, digest) => {
          const matched = tokenMatches(presented, digest);
          compares.push({ digest, matched });
          return matched;
        },
      });
      return { reason: r.valid ? "valid" : r.reason, queries, compares };
    }

    test("unknown (not a UUID, or no such device), wrong token, disabled, revoked, expired: one query, one compare", async () => {
      const known = await createDevice(db, { name: "known" }, null);
      const disabled = await createDevice(db, { name: "disabled", disabled: true }, null);
      const expired = await createDevice(db, { name: "expired", expires_at: "2020-01-01T00:00:00Z" }, null);
      const revoked = await createDevice(db, { name: "revoked" }, null);
      await revokeDevices(db, [revoked.id]);

      const cases: Array<[string, string, string, string]> = [
        ["not a UUID", "no-such-device", known.token, "unknown_device"],
        ["no such device", randomUUID(), known.token, "unknown_device"],
        ["wrong token", known.id, known.token.slice(0, -1) + "x", "bad_token"],
        ["disabled", disabled.id, disabled.token, "disabled"],
        ["revoked", revoked.id, revoked.token, "revoked"],
        ["expired", expired.id, expired.token, "expired"],
      ];
      const shapes: string[] = [];
      for (const [name, id, token, reason] of cases) {
        const t = await traced(id, token);
        assert.equal(t.reason, reason, name);
        assert.equal(t.compares.length, 1, `${name}: one token compare`);
        assert.match(t.compares[0]!.digest, /^[0-9a-f]{64}$/, `${name}: against a sha256 digest`);
        assert.equal(t.compares[0]!.matched, reason !== "unknown_device" && reason !== "bad_token", name);
        shapes.push(t.queries.join(" | "));
      }
      assert.equal(new Set(shapes).size, 1, `the same query for every refusal: ${shapes.join("\n")}`);
      assert.equal(shapes[0]!.split(" | ").length, 1);
    });

    test("the stand-in digest matches no token, not even the empty one", async () => {
      const a = await traced(randomUUID(), "");
      const b = await traced("x", "");
      assert.equal(a.reason, "unknown_device");
      assert.equal(a.compares[0]!.matched, false);
      assert.equal(b.compares[0]!.digest, a.compares[0]!.digest, "one stand-in per process");
    });
  });
}
