// A device's identity for the apps people already have (docs/08-clients.md): one random
// `app_secret` per device, from which the secret WebSocket path and the Shadowsocks password are
// derived with HMAC-SHA256 under fixed labels. One stored value rotates both (rotate-token draws a
// new one); the path is found again by its sha256 (`app_path_hash`, unique-indexed).
// sql/0003_device_apps.sql derives the path hash of the devices that existed before it the same
// way, in SQL: change a label or a length here and that migration no longer agrees.
import { createHash, createHmac, randomBytes } from "node:crypto";
import type { AppKey } from "../protocol/control-plane.ts";
import type { ShadowsocksMethod } from "../protocol/ss-methods.ts";

export const APP_PATH_LABEL = "httvps app path v1";
export const APP_KEY_LABEL = "httvps app shadowsocks secret v1";
/** base64url characters after the "/": 132 bits, APP_PATH_PATTERN's length. */
const PATH_CHARS = 22;

/** The cipher a new device's apps use: the one every app and Outline supports, fast without AES hardware. */
export const DEFAULT_APP_CIPHER: ShadowsocksMethod = "chacha20-ietf-poly1305";

/** 32 random bytes, base64url (43 characters). */
export function newAppSecret(): string {
  return randomBytes(32).toString("base64url");
}

function derive(appSecret: string, label: string): string {
  return createHmac("sha256", Buffer.from(appSecret, "base64url")).update(label, "utf8").digest("base64url");
}

/** The device's path prefix: "/" and 22 base64url characters. */
export function appPath(appSecret: string): string {
  return "/" + derive(appSecret, APP_PATH_LABEL).slice(0, PATH_CHARS);
}

/** What validate-app looks a path up by (sha256 hex). */
export function appPathHash(path: string): string {
  return createHash("sha256").update(path, "utf8").digest("hex");
}

/** A device's app identity as admins and gateways get it. `secret` is a credential: never log it. */
export interface DeviceAppIdentity extends AppKey {
  path: string;
}

type AppColumns = { app_secret: string; app_cipher: string };

/** The device's Shadowsocks key at the gateway. */
export function appKey(row: AppColumns): AppKey {
  return { cipher: row.app_cipher, secret: derive(row.app_secret, APP_KEY_LABEL) };
}

export function deviceAppIdentity(row: AppColumns): DeviceAppIdentity {
  return { path: appPath(row.app_secret), ...appKey(row) };
}

/** The columns a new or rotated device stores. */
export function newAppColumns(): { app_secret: string; app_path_hash: string } {
  const app_secret = newAppSecret();
  return { app_secret, app_path_hash: appPathHash(appPath(app_secret)) };
}
