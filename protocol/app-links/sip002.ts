// SIP002 `ss://` links with the v2ray-plugin (shadowsocks-org docs/doc/sip002.md, sip003.md) and
// the base64 subscription list most apps import. The plugin options say WebSocket over TLS to the
// device's TCP path: what the gateway serves. `mux=0` by default: v2rayN rejects links with mux>0;
// sing-box and NekoBox then send the raw Shadowsocks stream (their mux is one session per WebSocket,
// so it would only add framing); mihomo ignores `mux` in links and uses Mux.Cool, which the same
// path also accepts (shadowsocks/v2ray-plugin main.go, MetaCubeX/mihomo common/convert/converter.go).
import { formatSsUrl } from "../ss-url.ts";
import { encodeBase64 } from "../base64.ts";
import { type AppIdentity, appPaths, checkIdentity } from "./identity.ts";

export interface PluginChoice {
  /** Mux.Cool in v2ray-plugin clients that honour it (ss-local's plugin defaults to it). Default false. */
  mux?: boolean;
}

/** SIP003 escaping inside a plugin option value: a backslash before `\`, `;`, `=` and `:`. */
function escapeOption(value: string): string {
  return value.replace(/[\\;=:]/g, (c) => `\\${c}`);
}

/** The SIP003 options for v2ray-plugin (also sing-box's `plugin_opts`): mode=websocket;tls;host=…;path=…/tcp;mux=0|1. */
export function v2rayPluginOptions(identity: AppIdentity, choice: PluginChoice = {}): string {
  const id = checkIdentity(identity);
  return [
    "mode=websocket",
    "tls",
    `host=${escapeOption(id.host)}`,
    `path=${escapeOption(appPaths(id.path).tcp)}`,
    `mux=${choice.mux ? 1 : 0}`,
  ].join(";");
}

/** `ss://BASE64URL(method:password)@host:port/?plugin=v2ray-plugin%3B…#name`. */
export function sip002Link(identity: AppIdentity, choice: PluginChoice = {}): string {
  const id = checkIdentity(identity);
  return formatSsUrl({
    method: id.cipher,
    password: id.secret,
    host: id.host,
    port: id.port,
    tag: id.name,
    extra: { plugin: `v2ray-plugin;${v2rayPluginOptions(id, choice)}` },
  });
}

/** The body of a base64 subscription: standard padded base64 of the newline-separated links. */
export function base64Subscription(links: readonly string[]): string {
  return encodeBase64(new TextEncoder().encode(links.join("\n")));
}
