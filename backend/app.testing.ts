// One backend for a test file: the app on a test database, with a clock the test moves, a
// cheap password hash, and the calls every test makes (as the owner's token, a gateway, or a
// signed-in admin).
import assert from "node:assert/strict";
import { type BackendApp, type BackendOptions, createBackendApp } from "./app.ts";
import type { Database } from "./db/database.ts";
import type { TestDatabase } from "./db/testing.ts";
import { memoryLogger } from "../logging/logger.ts";

export const ADMIN = "admin-token-for-tests-0123456789";
export const GW = "gateway-key-for-tests-0123456789";
/** A password long enough for the API's rule. */
export const PASSWORD = "correct horse battery staple";
/** scrypt at a cost that keeps a test's many sign-ins fast (the default is checked in passwords.test.ts). */
export const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 };

/** A clock that stands still until the test moves it. */
export class TestClock {
  private t: number;
  constructor(iso = "2025-03-09T12:00:00Z") {
    this.t = new Date(iso).getTime();
  }
  now = (): Date => new Date(this.t);
  set(iso: string): void {
    this.t = new Date(iso).getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Answer {
  status: number;
  // deno-lint-ignore no-explicit-any -- an API answer read field by field
  json: any;
  headers: Headers;
}

export interface TestBackend {
  db: Database;
  app: BackendApp;
  clock: TestClock;
  log: ReturnType<typeof memoryLogger>;
  /** A request with `key` as the bearer (null: none), from `address`. */
  call(method: string, path: string, body?: unknown, key?: string | null, address?: string): Promise<Answer>;
  validate(deviceId: string, token: string, extra?: object): Promise<Answer>;
  report(events: object[], extra?: object): Promise<Answer>;
  newDevice(fields?: object, key?: string): Promise<{ device_id: string; token: string; app: { path: string } }>;
  /** Create an admin account (as the owner) and sign it in; its session token. */
  newAdmin(fields: { name: string; role: "owner" | "operator"; own_devices_only?: boolean; max_devices?: number }): Promise<
    { id: string; token: string }
  >;
  close(): Promise<void>;
}

export async function openTestBackend(tdb: TestDatabase, options: Partial<BackendOptions> = {}): Promise<TestBackend> {
  const db = await tdb.open();
  const clock = new TestClock();
  const log = memoryLogger();
  const app = createBackendApp({
    db,
    adminToken: ADMIN,
    gatewayApiKey: GW,
    logger: log,
    sessionStaleAfterMs: 60_000,
    now: clock.now,
    scryptCost: CHEAP_SCRYPT,
    ...options,
  });
  const call = async (method: string, path: string, body?: unknown, key: string | null = ADMIN, address = "192.0.2.1") => {
    const headers: Record<string, string> = {};
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    }, { remoteAddress: address });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json, headers: res.headers };
  };
  const t: TestBackend = {
    db,
    app,
    clock,
    log,
    call,
    validate: (device_id, token, extra = {}) =>
      call("POST", "/api/v1/auth/validate-device", { device_id, token, client_version: "1.0", ...extra }, GW),
    report: (events, extra = {}) => call("POST", "/api/v1/gateway/report", { gateway_id: "gw-a", events, ...extra }, GW),
    async newDevice(fields = {}, key = ADMIN) {
      const r = await call("POST", "/api/v1/devices", { name: "phone", ...fields }, key);
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json;
    },
    async newAdmin(fields) {
      const r = await call("POST", "/api/v1/admins", { password: PASSWORD, ...fields });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const s = await call("POST", "/api/v1/auth/sign-in", { name: fields.name, password: PASSWORD }, null);
      assert.equal(s.status, 201, JSON.stringify(s.json));
      return { id: r.json.id, token: s.json.token };
    },
    close: () => db.close(),
  };
  return t;
}
