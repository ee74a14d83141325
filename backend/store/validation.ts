// validate-device and validate-app: the one query on every new tunnel session or app
// connection, so it is a single round trip in the common case (device, usage, open sessions,
// its sticky node and that node's per-device Outline key together), and a second only when the
// device needs a (new) node. Only a managed node (api_url + cert_sha256) the device has no key
// for yet costs more: the key is created through Outline's management API
// (backend/outline-keys.ts). Both find the device their own way (id and token, or the app path's
// hash) and then take the same checks, slot reservation and assignment.
import { randomBytes } from "node:crypto";
import type {
  Assignment,
  InvalidReason,
  ValidateAppRequest,
  ValidateAppResponse,
  ValidateResponse,
  ValidDevice,
} from "../../protocol/control-plane.ts";
import { type Database, Params } from "../db/database.ts";
import { appKey, appPathHash } from "../app-identity.ts";
import { tokenMatches } from "../secrets.ts";
import { isUuid } from "./devices.ts";
import { periodUsageJoin } from "./device-view.ts";
import { decodePrefix } from "./nodes.ts";

interface Row {
  id: string;
  name: string;
  token_hash: string;
  disabled: boolean;
  revoked_at: Date | null;
  expires_at: Date | null;
  expired: boolean;
  expire_after_days: number | null;
  first_connected_at: Date | null;
  max_sessions: number | null;
  data_quota_bytes: number | null;
  quota_period: string;
  usage_reset_at: Date | null;
  /** Bytes in the current quota period (the validate-app answer's usage). */
  used_up: number;
  used_down: number;
  sessions_open: number;
  app_secret: string;
  app_cipher: string;
  node_id: string | null;
  host: string | null;
  port: number | null;
  method: string | null;
  password: string | null;
  prefix: string | null;
  api_url: string | null;
  cert_sha256: string | null;
  key_port: number | null;
  key_method: string | null;
  key_password: string | null;
  node_usable: boolean | null;
}

/** A node as assignment sees it, with this device's own key on it when there is one. */
interface NodeCandidate {
  node_id: string;
  host: string;
  port: number;
  method: string;
  password: string;
  prefix: string | null;
  api_url: string | null;
  cert_sha256: string | null;
  key_port: number | null;
  key_method: string | null;
  key_password: string | null;
}

export interface DeviceKeyCredentials {
  port: number;
  method: string;
  password: string;
}

/** What a device's Outline keys need to know of it to get their data limit (backend/outline-keys.ts). */
export interface KeyedDevice {
  id: string;
  data_quota_bytes: number | null;
  quota_period: string;
  usage_reset_at: Date | null;
}

/**
 * An unknown device id is looked up (this id, which gen_random_uuid never makes, when the
 * presented one is not even a UUID) and its token compared with this digest of nothing, so it
 * costs the same query and the same compare as a known device with a wrong token (docs/07
 * "No oracle"). Random per process: no token matches it.
 */
const NO_DEVICE_ID = "00000000-0000-0000-0000-000000000000";
const NO_DEVICE_DIGEST = randomBytes(32).toString("hex");

export interface ValidateOptions {
  /**
   * The device's own access key on a managed node, created on first use; null means use
   * the node's own credentials (no API client, the API failed, or it is backing off).
   */
  deviceKey?: (device: KeyedDevice, node: { id: string; api_url: string; cert_sha256: string }) => Promise<
    DeviceKeyCredentials | null
  >;
  /** The token compare (secrets.ts tokenMatches); tests watch it run for unknown devices too. */
  tokenMatches?: (presented: string, storedHashHex: string) => boolean;
}

/** The limits are judged at this time (a test's clock, else the wall clock). */
export interface ValidationContext {
  staleAfterSec: number;
  now: Date;
}

/**
 * The device found by `where` ($1), with all its checks need; $2 the stale age, $3 the session
 * not to count, then the quota period's usage (store/device-view.ts) and the time.
 */
function deviceQuery(where: string, key: string, ctx: ValidationContext, sessionId: string) {
  const p = new Params();
  const found = `${where} = ${p.add(key)}`;
  const stale = p.add(ctx.staleAfterSec);
  const session = p.add(sessionId);
  const usage = periodUsageJoin(p, ctx.now);
  const text = `
select d.id, d.name, d.token_hash, d.disabled, d.revoked_at, d.expires_at, d.max_sessions, d.data_quota_bytes,
       d.expire_after_days, d.first_connected_at, d.quota_period, d.usage_reset_at,
       d.app_secret, d.app_cipher,
       (d.expires_at is not null and d.expires_at <= ${p.add(ctx.now.toISOString())}::timestamptz) as expired,
       q.used_up, q.used_down,
       case when d.max_sessions is null then 0 else
         (select count(*)::int from sessions s
           where s.device_id = d.id and s.closed_at is null
             and s.last_seen_at > now() - make_interval(secs => ${stale}::float8)
             and s.id <> ${session}) end as sessions_open,
       n.id as node_id, n.host, n.port, n.method, n.password, n.prefix, n.api_url, n.cert_sha256,
       k.port as key_port, k.method as key_method, k.password as key_password,
       (n.enabled and n.status <> 'down') as node_usable
  from devices d
  left join device_usage u on u.device_id = d.id
  ${usage}
  left join nodes n on n.id = d.node_id
  left join outline_keys k on k.device_id = d.id and k.node_id = d.node_id
 where ${found}`;
  return { text, params: p.values };
}

/** Enabled, not known to be down, fewest open sessions per unit of weight; ties broken at random. */
const PICK_NODE = `
select n.id as node_id, n.host, n.port, n.method, n.password, n.prefix, n.api_url, n.cert_sha256,
       k.port as key_port, k.method as key_method, k.password as key_password
  from nodes n
  left join outline_keys k on k.node_id = n.id and k.device_id = $3::uuid
 where n.enabled and n.status <> 'down' and not (n.id::text = any($1::text[]))
 order by (select count(*) from sessions s
            where s.node_id = n.id and s.closed_at is null
              and s.last_seen_at > now() - make_interval(secs => $2::float8))::float8 / n.weight,
          n.status = 'up' desc, random()
 limit 1`;

export interface ValidateInput {
  device_id: string;
  token: string;
  session_id?: string;
  exclude_node_ids?: string[];
  /** Who asks; recorded on a reserved session row. */
  gateway_id?: string;
}

/**
 * For a device with max_sessions, a validation that names its session reserves the slot
 * (a session row) under a per-device lock, so two hellos racing through two gateways cannot
 * both take the last slot. Re-validating the same session only refreshes its row.
 */
async function reserveSession(
  db: Database,
  deviceId: string,
  sessionId: string,
  max: number,
  staleAfterSec: number,
  gatewayId: string,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.query({ text: `select pg_advisory_xact_lock(hashtext($1))`, params: [`session-slots:${deviceId}`] });
    const rows = await tx.query({
      text: `insert into sessions (id, device_id, gateway_id)
             select $2, $1::uuid, $3
              where (select count(*) from sessions s
                      where s.device_id = $1::uuid and s.closed_at is null and s.id <> $2
                        and s.last_seen_at > now() - make_interval(secs => $4::float8)) < $5::int
             on conflict (id) do update set last_seen_at = now()
             returning id`,
      params: [deviceId, sessionId, gatewayId, staleAfterSec, max],
    });
    return rows.length > 0;
  });
}

export async function validateDevice(
  db: Database,
  input: ValidateInput,
  ctx: ValidationContext,
  opts: ValidateOptions = {},
): Promise<ValidateResponse> {
  const wellFormed = isUuid(input.device_id);
  const id = wellFormed ? input.device_id : NO_DEVICE_ID;
  const rows = await db.query<Row>(deviceQuery("d.id", id, ctx, input.session_id ?? ""));
  const d = wellFormed ? rows[0] : undefined;
  const tokenOk = (opts.tokenMatches ?? tokenMatches)(input.token, d?.token_hash ?? NO_DEVICE_DIGEST);
  if (!d) return { valid: false, reason: "unknown_device" };
  if (!tokenOk) return { valid: false, reason: "bad_token" };
  if (d.revoked_at) return { valid: false, reason: "revoked" };
  const admitted = await admit(db, d, input, ctx, opts);
  if (!admitted.ok) return { valid: false, reason: admitted.reason };
  return { valid: true, device: validDevice(d), assignment: admitted.assignment };
}

export interface ValidateAppInput extends Omit<ValidateAppRequest, "client_version"> {
  /** Who asks; recorded on a reserved session row. */
  gateway_id?: string;
}

/**
 * validate-app: the device whose app path this is. Unknown and revoked paths are the same
 * `unknown_device` with nothing else (the gateway answers them with its decoy site); a device
 * that may not connect is described with its usage, so a config fetch can say why. "connect"
 * is validate-device's admission (same checks in the same order, the slot reserved under the
 * same lock, the same assignment); "config" reserves nothing, assigns nothing (`assignment`
 * null) and does not count sessions: a config fetch is not a session, and the Outline Client
 * fetches its config again on every reconnect while its last app session may still linger.
 */
export async function validateApp(
  db: Database,
  input: ValidateAppInput,
  ctx: ValidationContext,
  opts: ValidateOptions = {},
): Promise<ValidateAppResponse> {
  const connect = input.purpose === "connect";
  const rows = await db.query<Row>(
    deviceQuery("d.app_path_hash", appPathHash(input.app_path), ctx, (connect && input.session_id) || ""),
  );
  const d = rows[0];
  if (!d || d.revoked_at) return { valid: false, reason: "unknown_device" };
  // The apps show this against the quota (subscription-userinfo): the current period's bytes.
  const usage = { bytes_up: d.used_up, bytes_down: d.used_down };
  const app = appKey(d);
  if (!connect) {
    const reason = refusal(d, false);
    if (reason) return { valid: false, reason, device: validDevice(d), usage };
    return { valid: true, device: validDevice(d), assignment: null, app, usage };
  }
  const admitted = await admit(db, d, input, ctx, opts);
  if (!admitted.ok) return { valid: false, reason: admitted.reason, device: validDevice(d), usage };
  return { valid: true, device: validDevice(d), assignment: admitted.assignment, app, usage };
}

function validDevice(d: Row): ValidDevice {
  return {
    id: d.id,
    name: d.name,
    max_sessions: d.max_sessions,
    data_quota_bytes: d.data_quota_bytes,
    expires_at: d.expires_at ? new Date(d.expires_at).toISOString() : null,
  };
}

/** The first limit a found, unrevoked device fails, in docs/02's order; sessions counted only when `countSessions`. */
function refusal(d: Row, countSessions: boolean): InvalidReason | undefined {
  if (d.disabled) return "disabled";
  if (d.expired) return "expired";
  if (d.data_quota_bytes !== null && d.used_up + d.used_down >= d.data_quota_bytes) return "quota_exceeded";
  if (countSessions && d.max_sessions !== null && d.sessions_open >= d.max_sessions) return "session_limit";
  return undefined;
}

/**
 * The first successful validation: the device's first connection, and for "N days from the
 * first connection" the start of that time (its expiry is set, it is no longer on hold).
 * Updates `d` to match. At most once per device; the condition makes racing validations agree.
 */
async function markFirstConnection(db: Database, d: Row, now: Date): Promise<void> {
  const onHold = d.expire_after_days !== null && d.expires_at === null;
  if (d.first_connected_at !== null && !onHold) return;
  const rows = await db.query<{ first_connected_at: Date; expires_at: Date | null }>({
    text: `update devices set first_connected_at = coalesce(first_connected_at, $2::timestamptz),
                  expires_at = case when expire_after_days is not null and expires_at is null
                                    then $2::timestamptz + make_interval(days => expire_after_days) else expires_at end
            where id = $1 and (first_connected_at is null or (expire_after_days is not null and expires_at is null))
            returning first_connected_at, expires_at`,
    params: [d.id, now.toISOString()],
  });
  if (rows[0]) Object.assign(d, rows[0]);
}

/** The limits, the session slot (when the request names its session) and the node. */
async function admit(
  db: Database,
  d: Row,
  input: { session_id?: string; exclude_node_ids?: string[]; gateway_id?: string },
  ctx: ValidationContext,
  opts: ValidateOptions,
): Promise<{ ok: true; assignment: Assignment | null } | { ok: false; reason: InvalidReason }> {
  const staleAfterSec = ctx.staleAfterSec;
  const reason = refusal(d, true);
  if (reason) return { ok: false, reason };
  if (d.max_sessions !== null && input.session_id) {
    const reserved = await reserveSession(
      db,
      d.id,
      input.session_id,
      d.max_sessions,
      staleAfterSec,
      input.gateway_id ?? "unknown",
    );
    if (!reserved) return { ok: false, reason: "session_limit" };
  }

  const exclude = input.exclude_node_ids ?? [];
  let node: NodeCandidate | null = null;
  if (d.node_id && d.node_usable && !exclude.includes(d.node_id)) {
    node = d as NodeCandidate;
  } else {
    const picked = await db.query<NodeCandidate>({ text: PICK_NODE, params: [exclude, staleAfterSec, d.id] });
    node = picked[0] ?? null;
    if (node && node.node_id !== d.node_id) {
      // Re-pin: the device stays on this node until it is disabled, down or fails a dial.
      await db.query({ text: `update devices set node_id = $2 where id = $1`, params: [d.id, node.node_id] });
    }
  }
  await markFirstConnection(db, d, ctx.now);
  return { ok: true, assignment: node && (await assignmentOn(node, d, opts)) };
}

/** The node's address with the device's own key when it has one (or gets one now), else the node's credentials. */
async function assignmentOn(n: NodeCandidate, d: Row, opts: ValidateOptions): Promise<Assignment> {
  const base = { node_id: n.node_id, host: n.host, prefix: decodePrefix(n.prefix) };
  if (n.key_port !== null) return { ...base, port: n.key_port, method: n.key_method!, password: n.key_password! };
  if (n.api_url && n.cert_sha256 && opts.deviceKey) {
    const k = await opts.deviceKey(d, {
      id: n.node_id,
      api_url: n.api_url,
      cert_sha256: n.cert_sha256,
    });
    if (k) return { ...base, port: k.port, method: k.method, password: k.password };
  }
  return { ...base, port: n.port, method: n.method, password: n.password };
}
