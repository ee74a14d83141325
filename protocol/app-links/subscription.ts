// The subscription endpoint's choices: which format an app gets (by `?format=`, else by its
// User-Agent, as the panels decide: Gozargah/Marzban app/routers/subscription.py), the body,
// and the headers the apps read for usage, refresh interval and profile name
// (MetaCubeX/mihomo adapter/provider/subscription_info.go; clash-verge-rev src-tauri/src/config/prfitem.rs;
// hiddify-app lib/features/profile/data/profile_parser.dart). Pure: no I/O.
import { encodeBase64 } from "../base64.ts";
import { type AppIdentity, appPaths, type AppUsage, authority, checkIdentity } from "./identity.ts";
import { outlineConfig, ssconfLink } from "./outline.ts";
import { base64Subscription, sip002Link } from "./sip002.ts";
import { clashConfig } from "./clash.ts";
import { singBoxConfig } from "./sing-box.ts";

export type SubscriptionFormat = "clash" | "sing-box" | "outline" | "base64";

const FORMAT_NAMES: Record<string, SubscriptionFormat> = {
  clash: "clash",
  "clash-meta": "clash",
  mihomo: "clash",
  "sing-box": "sing-box",
  singbox: "sing-box",
  outline: "outline",
  base64: "base64",
  v2ray: "base64",
  sip002: "base64",
};

// Prefix matches on the User-Agent, first match wins (Marzban's order and patterns):
// - Clash family: clash-verge, ClashMetaForAndroid, Clash for Windows, FlClash, mihomo, Stash.
// - sing-box family: the sing-box apps (SFA/SFI/SFM/SFT), Hiddify ("HiddifyNext/…"), Karing.
//   Hiddify's User-Agent also says "ClashMeta" further on, which is why these are prefix matches.
// - The Outline Client (its own config path is the usual way; this is for a pasted subscription URL).
// Everything else — v2rayN, v2rayNG, NekoBox, Shadowrocket, browsers — gets the base64 list of ss:// links.
const USER_AGENTS: [RegExp, SubscriptionFormat][] = [
  [/^(clash|flclash|mihomo|stash)/i, "clash"],
  [/^(sfa|sfi|sfm|sft|sing-box|hiddify|karing)/i, "sing-box"],
  [/^(outline|ssconf)/i, "outline"],
];

/** The format to serve: a known `?format=` value wins; otherwise the User-Agent decides; else base64. */
export function subscriptionFormatFor(
  format: string | null | undefined,
  userAgent: string | null | undefined,
): SubscriptionFormat {
  const asked = format ? FORMAT_NAMES[format.trim().toLowerCase()] : undefined;
  if (asked) return asked;
  const ua = (userAgent ?? "").trim();
  return USER_AGENTS.find(([re]) => re.test(ua))?.[1] ?? "base64";
}

/** The body and its Content-Type for one format. */
export function subscriptionBody(format: SubscriptionFormat, identity: AppIdentity): { body: string; contentType: string } {
  switch (format) {
    case "clash":
      return { body: clashConfig(identity), contentType: "text/yaml; charset=utf-8" };
    case "sing-box":
      return { body: singBoxConfig(identity), contentType: "application/json; charset=utf-8" };
    case "outline":
      return { body: outlineConfig(identity), contentType: "text/yaml; charset=utf-8" };
    case "base64":
      return { body: base64Subscription([sip002Link(identity)]), contentType: "text/plain; charset=utf-8" };
  }
}

/** The subscription URL a person imports into an app. */
export function subscriptionUrl(identity: AppIdentity): string {
  const id = checkIdentity(identity);
  return `https://${authority(id)}${appPaths(id.path).subscription}`;
}

const wholeBytes = (n: number | null | undefined) => (n && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);

/** `upload=N; download=N; total=N; expire=UNIX_SECONDS`; 0 means no quota / never (Hiddify, Marzban). */
export function subscriptionUserinfo(usage: AppUsage): string {
  const expire = usage.expire === null || usage.expire === undefined ? 0 : Math.floor(new Date(usage.expire).getTime() / 1000);
  return [
    `upload=${wholeBytes(usage.upload)}`,
    `download=${wholeBytes(usage.download)}`,
    `total=${wholeBytes(usage.total)}`,
    `expire=${Number.isFinite(expire) && expire > 0 ? expire : 0}`,
  ].join("; ");
}

export interface SubscriptionHeaderOptions {
  /** How often apps refetch, in hours (clash-verge-rev and Hiddify read it). Default 12, as Marzban's. */
  updateIntervalHours?: number;
}

/** RFC 5987 value characters; everything else is percent-encoded. */
const rfc5987 = (text: string) =>
  encodeURIComponent(text).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The response headers every format gets. All values are ASCII, whatever the device name holds:
 * the title is `base64:` + UTF-8 (Hiddify's form), the file name has an ASCII fallback and an
 * RFC 5987 UTF-8 form (clash-verge-rev prefers `filename*`, Hiddify reads `filename="…"`).
 */
export function subscriptionHeaders(
  identity: AppIdentity,
  usage: AppUsage,
  options: SubscriptionHeaderOptions = {},
): Record<string, string> {
  const id = checkIdentity(identity);
  const hours = options.updateIntervalHours ?? 12;
  const ascii = id.name.replace(/[^A-Za-z0-9 ._-]/g, "_").replace(/^[ .]+|[ .]+$/g, "").slice(0, 64) || "httvps";
  return {
    "subscription-userinfo": subscriptionUserinfo(usage),
    "profile-update-interval": String(Number.isInteger(hours) && hours > 0 ? hours : 12),
    "profile-title": `base64:${encodeBase64(new TextEncoder().encode(id.name))}`,
    "content-disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${rfc5987(id.name)}`,
  };
}

/** The three things `httvps device create --json` / `device links` hand a person: the Outline key, the ss:// link, the subscription URL. */
export function appLinks(identity: AppIdentity): { ssconf: string; ss_url: string; subscription_url: string } {
  return { ssconf: ssconfLink(identity), ss_url: sip002Link(identity), subscription_url: subscriptionUrl(identity) };
}
