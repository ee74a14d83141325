// The console's actions from the command line: every device, node, admin and audit command
// with --json against a real `httvps backend` (embedded PGlite), on the runtime running this file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runHttvps, startHttvps } from "../cli.ts";

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

const PASSWORD = "a long enough password";

describe("the console's actions as httvps commands", () => {
  let dir: string;
  let env: Record<string, string>;
  let base: string;
  let backend: Awaited<ReturnType<typeof startHttvps>> | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "httvps-cli-"));
    const port = await freePort();
    env = { DATA_DIR: join(dir, "data"), BACKEND_PORT: String(port), LOG_LEVEL: "warn" };
    base = `http://127.0.0.1:${port}`;
    backend = await startHttvps(["backend"], { ...env, LOG_LEVEL: "info" }, /backend listening/, { timeoutMs: 120_000 });
  });
  after(async () => {
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `httvps …args --json`, which must succeed; its parsed output. */
  // deno-lint-ignore no-explicit-any -- an API answer read field by field
  const json = async (args: string[], input?: string): Promise<any> => {
    const r = await runHttvps([...args, "--json"], env, { input });
    assert.equal(r.code, 0, `httvps ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const fails = async (args: string[], code: number, stderr: RegExp, input?: string) => {
    const r = await runHttvps(args, env, { input });
    assert.equal(r.code, code, `httvps ${args.join(" ")}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, stderr);
  };

  test("device create, show, update (quota period, first-connection expiry), disable, enable, rotate, reset-usage, revoke", async () => {
    const d = await json([
      "device",
      "create",
      "--name",
      "cli phone",
      "--quota-bytes",
      "5000",
      "--quota-period",
      "month",
      "--expire-after-days",
      "30",
    ]);
    assert.equal(d.quota_period, "month");
    assert.equal(d.status, "on_hold");
    assert.equal(d.expire_after_days, 30);
    const id = d.device_id;
    assert.equal((await json(["device", "show", id])).name, "cli phone");
    const updated = await json([
      "device",
      "update",
      id,
      "--name",
      "renamed",
      "--quota-bytes",
      "none",
      "--quota-period",
      "week",
      "--max-sessions",
      "3",
      "--expires-at",
      "2099-01-01T00:00:00Z",
    ]);
    assert.equal(updated.name, "renamed");
    assert.equal(updated.data_quota_bytes, null);
    assert.equal(updated.quota_period, "week");
    assert.equal(updated.max_sessions, 3);
    assert.equal(updated.expiry_mode, "date");
    assert.equal((await json(["device", "disable", id])).status, "disabled");
    assert.equal((await json(["device", "enable", id])).status, "active");
    const rotated = await json(["device", "rotate", id]);
    assert.equal(rotated.device_id, id);
    assert.notEqual(rotated.token, d.token);
    assert.match(rotated.access_key, /^httvps:\/\//);
    assert.equal((await json(["device", "reset-usage", id])).quota_used_bytes, 0);
    assert.equal((await json(["device", "revoke", id])).status, "revoked");
    const usage = await json(["device", "usage", id, "--bucket", "day"]);
    assert.equal(usage.series.points.length, 30);
    assert.deepEqual((await json(["device", "sessions", id, "--open"])).sessions, []);
    await fails(["device", "update", id], 2, /needs a change/);
    await fails(["device", "update", id, "--quota-period", "fortnight"], 2, /--quota-period: expected none, day, week, month/);
    await fails(["device", "show", "00000000-0000-0000-0000-000000000000"], 1, /not_found/);
  });

  test("device list with search and status; device bulk by ids and by filter", async () => {
    const made = [];
    for (const name of ["bulk-a", "bulk-b", "bulk-c"]) made.push((await json(["device", "create", "--name", name])).device_id);
    const found = await json(["device", "list", "--search", "BULK-"]);
    assert.deepEqual(found.map((d: { name: string }) => d.name), ["bulk-a", "bulk-b", "bulk-c"]);
    const off = await json(["device", "bulk", "disable", "--ids", `${made[0]},${made[1]}`]);
    assert.deepEqual(off, { action: "disable", ids: [made[0], made[1]], affected: 2 });
    assert.deepEqual(
      (await json(["device", "list", "--search", "bulk-", "--status", "disabled"])).map((d: { id: string }) => d.id),
      [made[0], made[1]],
    );
    const revoked = await json(["device", "bulk", "revoke", "--search", "bulk-", "--status", "disabled"]);
    assert.equal(revoked.affected, 2);
    const text = await runHttvps(["device", "bulk", "enable", "--search", "bulk-"], env);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.trim(), "enable: 0 devices", "revoked ones are not enabled, the active one needs nothing");
    await fails(["device", "bulk", "disable"], 2, /give --ids, or a filter/);
    await fails(["device", "bulk", "explode", "--ids", made[2]!], 2, /expected disable, enable, revoke, reset-usage/);
  });

  test("node add, update, disable, enable, remove", async () => {
    const n = await json(["node", "add", "--host", "127.0.0.1", "--port", "9", "--password", "pw", "--name", "cli node"]);
    const up = await json(["node", "update", n.id, "--weight", "7", "--region", "eu", "--name", "renamed node"]);
    assert.deepEqual([up.weight, up.region, up.name], [7, "eu", "renamed node"]);
    assert.equal((await json(["node", "disable", n.id])).enabled, false);
    assert.equal((await json(["node", "enable", n.id])).enabled, true);
    const listed = await json(["node", "list"]);
    assert.ok(listed.some((x: { id: string; devices_assigned: number }) => x.id === n.id && x.devices_assigned === 0));
    assert.deepEqual(await json(["node", "remove", n.id]), { deleted: true, id: n.id });
    await fails(["node", "update", n.id], 2, /needs a change/);
  });

  test("admin create (password from stdin, never argv), list, update, disable, enable, password; the account signs in", async () => {
    const a = await json([
      "admin",
      "create",
      "--name",
      "reseller",
      "--role",
      "operator",
      "--own-devices-only",
      "--max-devices",
      "5",
    ], PASSWORD + "\n");
    assert.deepEqual([a.name, a.role, a.own_devices_only, a.max_devices], ["reseller", "operator", true, 5]);
    const signIn = (password: string) =>
      fetch(`${base}/api/v1/auth/sign-in`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "reseller", password }),
      });
    assert.equal((await signIn(PASSWORD)).status, 201);
    const list = await json(["admin", "list"]);
    assert.ok(list.some((x: { id: string }) => x.id === a.id));
    const updated = await json(["admin", "update", "Reseller", "--all-devices", "--max-devices", "none"]);
    assert.deepEqual([updated.own_devices_only, updated.max_devices], [false, null]);
    assert.equal((await json(["admin", "disable", "reseller"])).disabled, true);
    assert.equal((await signIn(PASSWORD)).status, 401);
    assert.equal((await json(["admin", "enable", a.id])).disabled, false);
    await json(["admin", "password", "reseller"], "another long password\n");
    assert.equal((await signIn(PASSWORD)).status, 401);
    assert.equal((await signIn("another long password")).status, 201);
    await fails(["admin", "create", "--name", "x", "--role", "operator"], 2, /password on the first line of stdin/, "");
    await fails(
      ["admin", "create", "--name", "weak", "--role", "operator"],
      1,
      /validation_failed: password: at least 12/,
      "short\n",
    );
    await fails(["admin", "create", "--name", "x", "--role", "king"], 2, /--role: expected owner, operator/);
    await fails(["admin", "create", "--name", "x", "--role", "operator", "--password", "pw"], 2, /unknown option --password/);
    await fails(["admin", "disable", "nobody"], 1, /no admin account named nobody/);
  });

  test("audit list: the commands above, newest first, filtered by action", async () => {
    const entries = await json(["audit", "list", "--limit", "500"]);
    const actions = entries.map((e: { action: string }) => e.action);
    for (
      const a of [
        "device.create",
        "device.update",
        "device.bulk",
        "node.create",
        "node.delete",
        "admin.create",
        "admin.set_password",
        "auth.sign_in",
      ]
    ) {
      assert.ok(actions.includes(a), a);
    }
    assert.ok(entries.every((e: { actor: { name: string } }, i: number) => i === 0 || e.actor), "every entry names its actor");
    const created = await json(["audit", "list", "--action", "admin.create"]);
    assert.equal(created[0].detail.password, "(secret)");
    assert.equal(created[0].actor.name, "admin-token");
    assert.equal(created[0].address, "127.0.0.1");
    const two = await json(["audit", "list", "--action", "device.", "--limit", "2"]);
    assert.equal(two.length, 2);
    const log = readFileSync(join(env.DATA_DIR!, "..", "data", "admin-token"), "utf8");
    assert.ok(!JSON.stringify(entries).includes(log.trim()), "the admin token is in no entry");
    assert.ok(!backend!.output().includes(PASSWORD), "no password in the backend's log");
  });
});
