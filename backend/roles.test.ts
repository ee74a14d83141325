// Every route's credential and role, walked from the Router's own record of them: a gateway
// key opens only the gateway routes, an admin credential only the admin ones, an operator gets
// 403 on every owner route and through on every device route, and every state-changing admin
// route writes the audit log.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { testDatabases } from "./db/testing.ts";
import { ADMIN, GW, openTestBackend, type TestBackend } from "./app.testing.ts";

const NIL = "00000000-0000-0000-0000-000000000000";

for (const tdb of testDatabases()) {
  describe(`every route's credential and role on ${tdb.name}`, () => {
    let tb: TestBackend;
    let owner: { id: string; token: string };
    let operator: { id: string; token: string };

    before(async () => {
      tb = await openTestBackend(tdb);
      owner = await tb.newAdmin({ name: "olga", role: "owner" });
      operator = await tb.newAdmin({ name: "oscar", role: "operator" });
    });
    after(() => tb.close());

    const hit = (route: { method: string; path: string; body?: unknown }, key: string | null) =>
      tb.call(route.method.toUpperCase(), route.path.replace(":id", NIL), route.body ? {} : undefined, key);
    const routes = () => tb.app.routeSpecs;

    test("every route is declared through the Router, and every state-changing admin route is audited", () => {
      const known = new Set(routes().map((r) => `${r.method.toUpperCase()} ${r.path}`));
      const publicPaths = new Set(["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "*"]);
      for (const hr of tb.app.routes) {
        if (publicPaths.has(hr.path) || hr.method === "ALL") continue;
        // The console's pages hold no authority of their own: each is requests to the API routes
        // walked here, with the signed-in session's token (backend/console/api-client.ts).
        if (hr.path === "/admin" || hr.path.startsWith("/admin/")) continue;
        assert.ok(known.has(`${hr.method} ${hr.path}`), `route ${hr.method} ${hr.path} is not declared through the Router`);
      }
      for (const r of routes()) {
        if (r.method === "get" || r.auth === "gateway") assert.equal(r.audit, undefined, `${r.method} ${r.path} audits a read`);
        else assert.ok(r.audit, `${r.method} ${r.path} changes state without an audit action`);
      }
      const auths = new Set(routes().map((r) => r.auth));
      assert.deepEqual([...auths].sort(), ["admin", "gateway", "owner", "public"]);
      assert.ok(routes().filter((r) => r.auth !== "public").length >= 35, `${routes().length} routes`);
    });

    test("a missing, wrong or other kind of credential is 401 on every protected route", async () => {
      for (const route of routes().filter((r) => r.auth !== "public")) {
        const others = route.auth === "gateway" ? [ADMIN, owner.token, operator.token] : [GW];
        for (const key of [null, "wrong-key-wrong-key-wrong", ...others]) {
          const r = await hit(route, key);
          assert.equal(r.status, 401, `${route.method} ${route.path} with ${key === null ? "no key" : "a wrong key"}`);
          assert.equal(r.json.error.code, "unauthorized");
          assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer /);
        }
      }
    });

    test("an operator: 403 on every owner route (nodes, gateways, admins, audit, overview), through on every admin route", async () => {
      const owners = routes().filter((r) => r.auth === "owner");
      assert.ok(owners.some((r) => r.path.startsWith("/api/v1/nodes")));
      assert.ok(owners.some((r) => r.path.startsWith("/api/v1/gateways")));
      assert.ok(owners.some((r) => r.path.startsWith("/api/v1/admins")));
      assert.ok(owners.some((r) => r.path === "/api/v1/audit"));
      assert.ok(owners.some((r) => r.path === "/api/v1/stats/overview"));
      for (const route of owners) {
        const r = await hit(route, operator.token);
        assert.equal(r.status, 403, `${route.method} ${route.path} as an operator`);
        assert.equal(r.json.error.code, "forbidden");
        for (const key of [ADMIN, owner.token]) {
          const ok = await hit(route, key);
          assert.ok(![401, 403].includes(ok.status), `${route.method} ${route.path} as an owner: ${ok.status}`);
        }
      }
      // sign-out last: it ends the session it comes with
      const admins = routes().filter((r) => r.auth === "admin").sort((a, b) =>
        Number(a.path.endsWith("sign-out")) - Number(b.path.endsWith("sign-out"))
      );
      assert.ok(admins.some((r) => r.path.startsWith("/api/v1/devices")));
      for (const route of admins) {
        for (const key of [ADMIN, owner.token, operator.token]) {
          const r = await hit(route, key);
          assert.ok(![401, 403].includes(r.status), `${route.method} ${route.path}: ${r.status} ${JSON.stringify(r.json)}`);
        }
      }
    });

    test("the OpenAPI document says which roles may call each route and what it audits", async () => {
      const spec = (await tb.call("GET", "/api/v1/openapi.json", undefined, null)).json;
      assert.deepEqual(spec.paths["/api/v1/nodes"].get["x-roles"], ["owner"]);
      assert.deepEqual(spec.paths["/api/v1/devices"].get["x-roles"], ["owner", "operator"]);
      assert.equal(spec.paths["/api/v1/devices/{id}"].patch["x-audit"], "device.update");
      assert.deepEqual(spec.paths["/api/v1/devices"].get.security, [{ adminToken: [] }, { adminSession: [] }]);
      assert.deepEqual(spec.paths["/api/v1/auth/validate-device"].post.security, [{ gatewayKey: [] }]);
      assert.deepEqual(spec.paths["/api/v1/auth/sign-in"].post.security, []);
      assert.ok(spec.components.securitySchemes.adminSession);
    });
  });
}
