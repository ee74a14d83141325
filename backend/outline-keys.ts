// Per-device Outline access keys: created at a device's first assignment to a node with a
// management API, their data limit kept equal to the device's quota, deleted when the
// device is revoked or the node removed. The database is the record of what should be;
// every change is tried at once and, when an Outline server is away, again by `sync()`
// (server.ts runs it every NODE_CHECK_INTERVAL), so nothing here needs the API to be up.
import { type Queryable, sql } from "./db/database.ts";
import type { Logger } from "../logging/logger.ts";
import { apiOrigin, type OutlineApi, outlineApi, type OutlineApiConfig, OutlineApiError } from "./outline-api.ts";
import { createNode, type NodeFields, type NodeRow } from "./store/nodes.ts";
import type { DeviceKeyCredentials, KeyedDevice } from "./store/validation.ts";
import { isShadowsocksMethod } from "../protocol/ss-methods.ts";
import { urlHost } from "../protocol/ip-address.ts";

export interface OutlineKeysOptions {
  logger?: Logger;
  /** Bound on one management API call. */
  timeoutMs?: number;
  /**
   * How long validate-device waits for a new key before answering with the node's own
   * credentials (the key is still stored when it arrives). Below the gateway's backend
   * timeout (GATEWAY_BACKEND_TIMEOUT, 2 s by default), so a slow Outline server never
   * turns into a failed validation.
   */
  createWaitMs?: number;
  /** How long admin calls (PATCH, DELETE) wait for Outline before answering; the rest is left to sync(). */
  adminWaitMs?: number;
  /** After a failed call, a node's API is left alone for this long (validations use the node's credentials meanwhile). */
  backoffMs?: number;
  /** The API client factory (tests may wrap it). */
  api?: (cfg: OutlineApiConfig) => OutlineApi;
}

export interface ManagedNode {
  id: string;
  api_url: string;
  cert_sha256: string;
}

export interface RegisterInput {
  api_url: string;
  cert_sha256: string;
  name?: string;
  host?: string;
  region?: string | null;
  weight?: number;
  enabled?: boolean;
}

export interface OutlineKeys {
  /** validate-device's hook: see ValidateOptions.deviceKey. Never throws. */
  deviceKey(device: KeyedDevice, node: ManagedNode): Promise<DeviceKeyCredentials | null>;
  /** Bring one device's keys in line (quota → data limit, revoked → deleted). Never throws; waits at most adminWaitMs. */
  deviceChanged(deviceId: string): Promise<void>;
  /** Add a node from an Outline server's management API: a node key of its own, host and port from the server. Throws OutlineApiError. */
  registerServer(input: RegisterInput): Promise<NodeRow>;
  /**
   * Before a node row is deleted ("removed") or pointed at another management API
   * ("api_changed"): read what it has on its server; the returned function, called once the
   * change is committed, deletes those keys there in the background ("api_changed": the
   * per-device keys only, whose rows it drops, so devices get keys on the new server).
   */
  detachNode(nodeId: string, why: "removed" | "api_changed"): Promise<() => Promise<void>>;
  /** Retry every pending change (limits, deletions). Never throws. */
  sync(): Promise<void>;
  /** Resolves when background API work started so far has finished (tests, shutdown). */
  settle(): Promise<void>;
}

interface KeyRow {
  device_id: string;
  node_id: string;
  key_id: string;
  data_limit_bytes: number | null;
  data_quota_bytes: number | null;
  revoked: boolean;
  api_url: string;
  cert_sha256: string;
}

/**
 * The data limit a device's keys carry. Outline measures a key's limit over a trailing 30-day
 * window that never resets, so it can only fence a quota that never resets either: with a
 * quota period, or after a usage reset, the keys carry none (the backend's quota still holds).
 */
export function keyDataLimit(d: KeyedDevice): number | null {
  return d.quota_period === "none" && d.usage_reset_at === null ? d.data_quota_bytes : null;
}
const KEY_DATA_LIMIT_SQL = `(case when d.quota_period = 'none' and d.usage_reset_at is null then d.data_quota_bytes end)`;

/** Keys whose server state differs from what the database says it should be. */
const PENDING = `
select k.device_id, k.node_id, k.key_id, k.data_limit_bytes, ${KEY_DATA_LIMIT_SQL} as data_quota_bytes,
       (d.revoked_at is not null) as revoked, n.api_url, n.cert_sha256
  from outline_keys k
  join devices d on d.id = k.device_id
  join nodes n on n.id = k.node_id
 where n.api_url is not null and n.cert_sha256 is not null
   and (d.revoked_at is not null or k.data_limit_bytes is distinct from ${KEY_DATA_LIMIT_SQL})`;

const errorFields = (e: unknown) =>
  e instanceof OutlineApiError
    ? { code: e.code, status: e.status, message: e.message }
    : { code: "internal", message: e instanceof Error ? e.message : String(e) };

/** Resolves with p's value, or with undefined after ms (p keeps running). */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function createOutlineKeys(db: Queryable, opts: OutlineKeysOptions = {}): OutlineKeys {
  const log = opts.logger;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const createWaitMs = opts.createWaitMs ?? 1500;
  const adminWaitMs = opts.adminWaitMs ?? 3000;
  const backoffMs = opts.backoffMs ?? 30_000;
  const makeApi = opts.api ?? outlineApi;
  const apiFor = (n: { api_url: string; cert_sha256: string }) =>
    makeApi({ apiUrl: n.api_url, certSha256: n.cert_sha256, timeoutMs });

  const backoffUntil = new Map<string, number>();
  const creating = new Map<string, Promise<DeviceKeyCredentials | null>>();
  const background = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    background.add(p);
    void p.finally(() => background.delete(p)).catch(() => {});
    return p;
  };
  const backingOff = (nodeId: string) => (backoffUntil.get(nodeId) ?? 0) > Date.now();
  const failed = (nodeId: string, apiUrl: string, what: string, e: unknown, fields: Record<string, unknown> = {}) => {
    backoffUntil.set(nodeId, Date.now() + backoffMs);
    log?.warn(`outline api: ${what} failed`, { node_id: nodeId, api: apiOrigin(apiUrl), ...fields, error: errorFields(e) });
  };

  async function createKey(device: KeyedDevice, node: ManagedNode): Promise<DeviceKeyCredentials | null> {
    let api: OutlineApi | undefined;
    let keyId: string | undefined;
    try {
      api = apiFor(node);
      const limit = keyDataLimit(device);
      // The name is the device id, not its display name: an Outline Manager shows key names.
      const key = await api.createKey({ name: `httvps device ${device.id}`, limitBytes: limit });
      keyId = key.id;
      if (!isShadowsocksMethod(key.method)) {
        throw new OutlineApiError(
          "outline_api_error",
          `${api.origin}: new key uses method ${key.method.slice(0, 40)}, which the gateway cannot dial`,
        );
      }
      // Servers that ignore `limit` on create get it set explicitly.
      if (limit !== null && key.dataLimit?.bytes !== limit) await api.setDataLimit(key.id, limit);
      const inserted = await db.query<DeviceKeyCredentials>({
        text: `insert into outline_keys (device_id, node_id, key_id, port, method, password, data_limit_bytes)
               select $1::uuid, $2::uuid, $3::text, $4::int, $5::text, $6::text, $7::bigint
                where exists (select 1 from nodes where id = $2::uuid and api_url = $8::text)
               on conflict (device_id, node_id) do nothing
               returning port, method, password`,
        params: [device.id, node.id, key.id, key.port, key.method, key.password, limit, node.api_url],
      });
      if (inserted[0]) {
        log?.info("outline api: per-device key created", {
          node_id: node.id,
          device_id: device.id,
          key_id: key.id,
          api: api.origin,
        });
        return inserted[0];
      }
      // Another backend process won the race (or the node changed meanwhile): keep theirs, drop ours.
      await api.deleteKey(key.id).catch((e) => failed(node.id, node.api_url, "deleting a surplus key", e, { key_id: key.id }));
      const theirs = await db.query<DeviceKeyCredentials>(
        sql`select port, method, password from outline_keys where device_id = ${device.id} and node_id = ${node.id}`,
      );
      return theirs[0] ?? null;
    } catch (e) {
      // A key we cannot use or record must not linger on the server.
      if (api && keyId !== undefined) void track(api.deleteKey(keyId).catch(() => {}));
      failed(node.id, node.api_url, "creating a per-device key", e, { device_id: device.id, assignment: "the node's own key" });
      return null;
    }
  }

  /** Apply one pending row; errors are logged and left for the next sync. */
  async function apply(k: KeyRow): Promise<void> {
    if (backingOff(k.node_id)) return;
    try {
      const api = apiFor(k);
      if (k.revoked) {
        await api.deleteKey(k.key_id);
        await db.query(
          sql`delete from outline_keys where device_id = ${k.device_id} and node_id = ${k.node_id} and key_id = ${k.key_id}`,
        );
        log?.info("outline api: per-device key deleted", {
          node_id: k.node_id,
          device_id: k.device_id,
          key_id: k.key_id,
          api: api.origin,
        });
        return;
      }
      try {
        await api.setDataLimit(k.key_id, k.data_quota_bytes);
      } catch (e) {
        if (e instanceof OutlineApiError && e.status === 404) {
          // The key was deleted on the server: forget it, the next validation creates a new one.
          await db.query(
            sql`delete from outline_keys where device_id = ${k.device_id} and node_id = ${k.node_id} and key_id = ${k.key_id}`,
          );
          log?.warn("outline api: per-device key missing on its server; it will be re-created", {
            node_id: k.node_id,
            device_id: k.device_id,
            key_id: k.key_id,
          });
          return;
        }
        throw e;
      }
      await db.query({
        text: `update outline_keys set data_limit_bytes = $4::bigint where device_id = $1 and node_id = $2 and key_id = $3`,
        params: [k.device_id, k.node_id, k.key_id, k.data_quota_bytes],
      });
    } catch (e) {
      failed(k.node_id, k.api_url, k.revoked ? "deleting a revoked device's key" : "setting a key's data limit", e, {
        device_id: k.device_id,
        key_id: k.key_id,
      });
    }
  }

  async function applyAll(rows: KeyRow[]): Promise<void> {
    // One node at a time per server, all servers at once: a slow server delays only its own keys.
    const byNode = new Map<string, KeyRow[]>();
    for (const r of rows) byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), r]);
    await Promise.all([...byNode.values()].map(async (list) => {
      for (const r of list) await apply(r);
    }));
  }

  async function deleteRemote(node: { id: string; api_url: string; cert_sha256: string }, keyIds: string[]): Promise<void> {
    for (const id of keyIds) {
      try {
        await apiFor(node).deleteKey(id);
      } catch (e) {
        // The node row is gone, so there is nothing left to retry from: say so once per key.
        log?.warn("outline api: could not delete a removed node's key; delete it in the Outline Manager", {
          node_id: node.id,
          api: apiOrigin(node.api_url),
          key_id: id,
          error: errorFields(e),
        });
      }
    }
  }

  let syncing: Promise<void> | undefined;

  return {
    async deviceKey(device, node) {
      if (backingOff(node.id)) return null;
      const slot = `${device.id}/${node.id}`;
      let p = creating.get(slot);
      if (!p) {
        p = track(createKey(device, node).catch(() => null).finally(() => creating.delete(slot)));
        creating.set(slot, p);
      }
      return (await within(p, createWaitMs)) ?? null;
    },

    async deviceChanged(deviceId) {
      try {
        const rows = await db.query<KeyRow>({ text: `${PENDING} and k.device_id = $1`, params: [deviceId] });
        if (rows.length) await within(track(applyAll(rows)), adminWaitMs);
      } catch (e) {
        log?.warn("outline api: device change not mirrored yet", { device_id: deviceId, error: errorFields(e) });
      }
    },

    async registerServer(input) {
      const api = apiFor(input);
      const info = await api.server();
      const key = await api.createKey({ name: "httvps node key (health checks, fallback)" });
      try {
        if (!isShadowsocksMethod(key.method)) {
          throw new OutlineApiError(
            "outline_api_error",
            `${api.origin}: new keys use method ${key.method.slice(0, 40)}, which the gateway cannot dial`,
          );
        }
        const host = input.host ?? (info.hostnameForAccessKeys || urlHost(new URL(input.api_url)));
        const fields: Required<Pick<NodeFields, "name" | "host" | "port" | "method" | "password">> & NodeFields = {
          name: input.name ?? (info.name ? info.name.slice(0, 100) : `${host}:${key.port}`),
          host,
          port: key.port,
          method: key.method,
          password: key.password,
          region: input.region,
          weight: input.weight,
          enabled: input.enabled,
          api_url: input.api_url,
          cert_sha256: input.cert_sha256,
        };
        const node = await createNode(db, fields);
        await db.query(sql`update nodes set outline_key_id = ${key.id} where id = ${node.id}`);
        log?.info("outline api: server registered as a node", { node_id: node.id, api: api.origin, key_id: key.id });
        return node;
      } catch (e) {
        await api.deleteKey(key.id).catch(() => {});
        throw e;
      }
    },

    async detachNode(nodeId, why) {
      const rows = await db.query<
        { api_url: string | null; cert_sha256: string | null; outline_key_id: string | null; key_ids: string[] | null }
      >(
        sql`select n.api_url, n.cert_sha256, n.outline_key_id,
                   (select array_agg(k.key_id order by k.key_id) from outline_keys k where k.node_id = n.id) as key_ids
              from nodes n where n.id = ${nodeId}`,
      );
      const n = rows[0];
      if (!n) return async () => {};
      const perDevice = n.key_ids ?? [];
      return async () => {
        if (why === "api_changed") {
          // The old server's ids mean nothing (or another key) on a new one.
          await db.query(sql`delete from outline_keys where node_id = ${nodeId}`);
          await db.query(sql`update nodes set outline_key_id = null where id = ${nodeId}`);
        }
        if (!n.api_url || !n.cert_sha256) return;
        // The node's own key goes only with the node: after an api_url change its credentials may still be that key.
        const ids = why === "removed" && n.outline_key_id ? [...perDevice, n.outline_key_id] : perDevice;
        if (ids.length) void track(deleteRemote({ id: nodeId, api_url: n.api_url, cert_sha256: n.cert_sha256 }, ids));
      };
    },

    sync() {
      // A sync in progress is joined, not doubled: two would race to apply the same rows.
      return (syncing ??= (async () => {
        try {
          const rows = await db.query<KeyRow>({ text: `${PENDING} order by k.node_id limit 1000`, params: [] });
          await applyAll(rows);
        } catch (e) {
          log?.warn("outline api: sync failed", { error: errorFields(e) });
        } finally {
          syncing = undefined;
        }
      })());
    },

    async settle() {
      while (background.size) await Promise.allSettled([...background]);
    },
  };
}
