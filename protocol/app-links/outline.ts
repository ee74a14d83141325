// The Outline Client's dynamic access key: `ssconf://HOST[:PORT]/<config path>#<name>`, and the
// config the gateway answers at that path, fetched again on every connect (Jigsaw-Code/outline-apps
// client/config.md; client/go/outline/config/config_shadowsocks.go, config_websocket.go). The
// WebSocket TunnelConfig needs client 1.15 or later on every platform; since 1.15 the Shadowsocks
// maps are decoded strictly, so exactly the documented keys are written. Errors go in the
// `error:` form with status 200: the client shows `message` and, under "details", `details`
// (a status above 299 only gives the person a generic fetch failure).
import { type AppIdentity, appPaths, type AppUsage, authority, checkIdentity, yamlString } from "./identity.ts";

/** The TunnelConfig: Shadowsocks over WebSocket, `…/tcp` for streams and `…/udp` for datagrams. */
export function outlineConfig(identity: AppIdentity): string {
  const id = checkIdentity(identity);
  const paths = appPaths(id.path);
  const dialer = (path: string) =>
    [
      `    $type: ${yamlString("shadowsocks")}`,
      `    endpoint:`,
      `      $type: ${yamlString("websocket")}`,
      `      url: ${yamlString(`wss://${authority(id)}${path}`)}`,
      `    cipher: ${yamlString(id.cipher)}`,
      `    secret: ${yamlString(id.secret)}`,
    ].join("\n");
  return `transport:\n  $type: ${yamlString("tcpudp")}\n  tcp:\n${dialer(paths.tcp)}\n  udp:\n${dialer(paths.udp)}\n`;
}

/** The dynamic access key; the name is the fragment, percent-encoded, so `&` and `=` survive Outline's fragment parsing. */
export function ssconfLink(identity: AppIdentity): string {
  const id = checkIdentity(identity);
  return `ssconf://${authority(id)}${appPaths(id.path).outlineConfig}#${encodeURIComponent(id.name)}`;
}

/** Why a device may not connect: the control plane's auth failure codes (protocol/errors.ts) that reach a person. */
export type OutlineRefusal =
  | "disabled"
  | "expired"
  | "revoked"
  | "unknown_device"
  | "quota_exceeded"
  | "session_limit"
  | "unavailable";

const ASK = "Ask the person who gave you this key";

/** Bytes in decimal units, as Outline's own data limits are shown: "1.5 GB". */
export function formatBytes(n: number): string {
  const units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
  let v = Math.max(0, n);
  let u = 0;
  while (v >= 999.5 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v)} bytes` : `${v >= 100 ? Math.round(v) : Number(v.toPrecision(3))} ${units[u]}`;
}

function day(when: Date | string | null | undefined): string | undefined {
  if (when === null || when === undefined) return undefined;
  const d = new Date(when);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().slice(0, 10);
}

/** The message and details a person sees for a refusal. */
export function outlineRefusalText(reason: OutlineRefusal, usage?: AppUsage): { message: string; details: string } {
  switch (reason) {
    case "disabled":
      return { message: "This key is switched off", details: `${ASK} to switch it back on.` };
    case "expired": {
      const on = day(usage?.expire);
      return { message: "This key has expired", details: `${on ? `It stopped working on ${on}. ` : ""}${ASK} for more time.` };
    }
    case "revoked":
    case "unknown_device":
      return { message: "This key no longer works", details: `It was replaced or withdrawn. ${ASK} for a new one.` };
    case "quota_exceeded": {
      const used = usage ? `You have used ${formatBytes(usage.upload + usage.download)}` : "You have used all your data";
      const of = usage?.total ? ` of ${formatBytes(usage.total)}` : "";
      return { message: "Data limit reached", details: `${used}${of}. ${ASK} for more data.` };
    }
    case "session_limit":
      return {
        message: "Too many connections",
        details: "This key is already in use on as many connections as it allows. Disconnect another device and try again.",
      };
    case "unavailable":
      return { message: "The service is busy", details: "Please try again in a few minutes." };
  }
}

/** The `error:` config for a device that may not connect (serve it with status 200). */
export function outlineErrorConfig(reason: OutlineRefusal, usage?: AppUsage): string {
  const { message, details } = outlineRefusalText(reason, usage);
  return `error:\n  message: ${yamlString(message)}\n  details: ${yamlString(details)}\n`;
}
