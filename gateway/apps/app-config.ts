// The config fetches of the apps people already have (docs/08-clients.md): `GET /<P>/outline`,
// the Outline Client's dynamic access key config, and `GET /<P>/sub`, the subscription other apps
// import. Both are built at fetch time from the gateway's public address and the device's
// identity as validate-app gives it, so nothing needs re-issuing when keys or gateways change.
// A path that names no device (or a revoked one) gets nothing here: the caller serves the decoy
// site, exactly as for any other unknown path.
import { publicGatewayAddress } from "../../config/config.ts";
import type { Logger } from "../../logging/logger.ts";
import { APP_PATH_PATTERN } from "../../protocol/control-plane.ts";
import { type AppIdentity, AppLinkError, type AppUsage, checkIdentity } from "../../protocol/app-links/identity.ts";
import { outlineConfig, outlineErrorConfig, type OutlineRefusal, outlineRefusalText } from "../../protocol/app-links/outline.ts";
import {
  subscriptionBody,
  subscriptionFormatFor,
  subscriptionHeaders,
  subscriptionUserinfo,
} from "../../protocol/app-links/subscription.ts";
import type { AppAuthOutcome } from "../auth.ts";
import type { AppAuth } from "./app-auth.ts";

export interface AppConfigOptions {
  auth: AppAuth;
  /** GATEWAY_PUBLIC_URL: its host and port go into the configs; unset, the request's Host does. */
  publicUrl?: string;
  /** GATEWAY_APP_SUB_UPDATE_HOURS. */
  updateIntervalHours: number;
  logger?: Logger;
}

/** The refusals a person can be told about; anything newer reads as "switched off". */
const REFUSALS: readonly string[] = [
  "disabled",
  "expired",
  "quota_exceeded",
  "session_limit",
  "unavailable",
] satisfies OutlineRefusal[];
const refusalOf = (code: string): OutlineRefusal => (REFUSALS.includes(code) ? code as OutlineRefusal : "disabled");

const NO_STORE = { "cache-control": "no-store" };
const YAML = "text/yaml; charset=utf-8";

function usageOf(r: AppAuthOutcome): AppUsage | undefined {
  if (!r.device || !r.usage) return undefined;
  return {
    upload: r.usage.bytes_up,
    download: r.usage.bytes_down,
    total: r.device.data_quota_bytes,
    expire: r.device.expires_at,
  };
}

/**
 * The handler: a Response for `GET /<P>/outline` and `GET /<P>/sub` of a device the backend
 * knows, undefined for everything else (the caller answers that with the decoy site).
 */
export function appConfigHandler(opts: AppConfigOptions): (req: Request) => Promise<Response | undefined> {
  const fixed = opts.publicUrl ? publicGatewayAddress(opts.publicUrl) : undefined;

  return async (req) => {
    if (req.method !== "GET") return undefined;
    // Bun hands an HTTP/1.0 request without Host a URL that does not parse: not ours, the decoy's.
    const url = URL.canParse(req.url) ? new URL(req.url) : undefined;
    const m = url && APP_PATH_PATTERN.exec(url.pathname);
    if (!m || (m[2] !== "/outline" && m[2] !== "/sub")) return undefined;
    const path = `/${m[1]}`;
    const userAgent = req.headers.get("user-agent") ?? "";
    const r = await opts.auth.check(path, { purpose: "config", client_version: userAgent });
    if (!r.ok && r.code === "unknown_device") return undefined;

    const format = m[2] === "/outline" ? "outline" : subscriptionFormatFor(url.searchParams.get("format"), userAgent);
    if (!r.ok) {
      // Outline shows an `error:` body's message only with status 200; other apps have no error
      // form, so they get a status that fails the update (the previous profile stays) and the usage.
      opts.logger?.debug("app config refused", { device_id: r.device?.id, reason: r.code, format });
      const usage = usageOf(r);
      if (format === "outline") {
        return new Response(outlineErrorConfig(refusalOf(r.code), usage), { headers: { "content-type": YAML, ...NO_STORE } });
      }
      const { message, details } = outlineRefusalText(refusalOf(r.code), usage);
      return new Response(`${message}. ${details}\n`, {
        status: r.code === "unavailable" ? 503 : 403,
        headers: {
          "content-type": "text/plain; charset=utf-8",
          ...NO_STORE,
          ...(usage ? { "subscription-userinfo": subscriptionUserinfo(usage) } : {}),
        },
      });
    }

    const address = fixed ?? { host: url.hostname, port: Number(url.port || 443) };
    const identity: AppIdentity = { name: r.device.name, host: address.host, port: address.port, path, ...r.app };
    try {
      checkIdentity(identity);
    } catch (e) {
      // A Host header that is no host name (the configs would carry it): nothing an app sends.
      if (e instanceof AppLinkError) return undefined;
      throw e;
    }
    opts.logger?.debug("app config served", { device_id: r.device.id, format });
    if (m[2] === "/outline") return new Response(outlineConfig(identity), { headers: { "content-type": YAML, ...NO_STORE } });
    const usage = usageOf(r)!;
    const { body, contentType } = subscriptionBody(format, identity);
    return new Response(body, {
      headers: {
        "content-type": contentType,
        ...NO_STORE,
        ...subscriptionHeaders(identity, usage, { updateIntervalHours: opts.updateIntervalHours }),
      },
    });
  };
}
