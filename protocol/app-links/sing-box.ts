// A sing-box profile with one Shadowsocks outbound over the v2ray-plugin (SagerNet/sing-box
// docs/configuration/outbound/shadowsocks.md, transport/sip003/v2ray.go), importable as a whole
// profile by the sing-box apps (SFA, SFI, SFM) and as outbounds by Hiddify and Karing. A tun
// inbound captures the device's traffic; DNS is hijacked and answered by sing-box's default
// (local) resolver, while the proxied connections carry the sniffed host names to the gateway.
// Rule actions and the tun `address` field need sing-box 1.11 or later. `network: "tcp"`: the
// plugin carries TCP only, so UDP is refused at once instead of sent as plain Shadowsocks UDP
// to a TLS port that never answers.
import { type AppIdentity, checkIdentity } from "./identity.ts";
import { v2rayPluginOptions } from "./sip002.ts";

const RESERVED_TAGS = ["direct", "tun-in"];

export function singBoxConfig(identity: AppIdentity): string {
  const id = checkIdentity(identity);
  const tag = RESERVED_TAGS.includes(id.name) ? `${id.name} (${id.host})` : id.name;
  const config = {
    log: { level: "warn" },
    inbounds: [
      { type: "tun", tag: "tun-in", address: ["172.19.0.1/30", "fdfe:dcba:9876::1/126"], auto_route: true, strict_route: true },
    ],
    outbounds: [
      {
        type: "shadowsocks",
        tag,
        server: id.host,
        server_port: id.port,
        method: id.cipher,
        password: id.secret,
        network: "tcp",
        plugin: "v2ray-plugin",
        plugin_opts: v2rayPluginOptions(id),
      },
      { type: "direct", tag: "direct" },
    ],
    route: {
      rules: [{ action: "sniff" }, { protocol: "dns", action: "hijack-dns" }],
      final: tag,
      auto_detect_interface: true,
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}
