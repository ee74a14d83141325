// A Clash / mihomo (Clash Meta) profile with one Shadowsocks proxy over the v2ray-plugin, the
// keys of MetaCubeX/mihomo adapter/outbound/shadowsocks.go and MetaCubeX/Meta-Docs
// docs/config/proxies/ss.md, plus the smallest proxy group and rule set clash-verge-rev accepts
// (it needs `proxies`). `mux: false` is written out because mihomo's default is true: without
// Mux.Cool, mihomo sends the raw Shadowsocks stream, and its reader's quirks (it assumes
// MetaLen 4 and reads the status with one Read) never come into play. `udp: false`: mihomo would
// send UDP as plain Shadowsocks UDP to host:port, which a TLS port does not answer; apps fall back
// to TCP sooner when the proxy refuses UDP outright.
import { type AppIdentity, appPaths, checkIdentity, yamlString } from "./identity.ts";

/** The one proxy group; the rule names it, so it is a fixed name (a device name with a comma would break the rule). */
export const CLASH_GROUP = "HTTVPS";

export function clashConfig(identity: AppIdentity): string {
  const id = checkIdentity(identity);
  // Proxies and groups share one namespace in mihomo.
  const name = id.name === CLASH_GROUP ? `${id.name} (${id.host})` : id.name;
  return [
    "proxies:",
    `  - name: ${yamlString(name)}`,
    `    type: ${yamlString("ss")}`,
    `    server: ${yamlString(id.host)}`,
    `    port: ${id.port}`,
    `    cipher: ${yamlString(id.cipher)}`,
    `    password: ${yamlString(id.secret)}`,
    `    udp: false`,
    `    plugin: ${yamlString("v2ray-plugin")}`,
    `    plugin-opts:`,
    `      mode: ${yamlString("websocket")}`,
    `      tls: true`,
    `      host: ${yamlString(id.host)}`,
    `      path: ${yamlString(appPaths(id.path).tcp)}`,
    `      mux: false`,
    "proxy-groups:",
    `  - name: ${yamlString(CLASH_GROUP)}`,
    `    type: ${yamlString("select")}`,
    `    proxies:`,
    `      - ${yamlString(name)}`,
    "rules:",
    `  - ${yamlString(`MATCH,${CLASH_GROUP}`)}`,
    "",
  ].join("\n");
}
