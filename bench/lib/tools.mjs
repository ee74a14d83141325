// What a bench run needs on the machine: the peers' Debian packages (installed with apt-get
// when missing and allowed), and the versions of everything it measured, for the results.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const has = (bin) => spawnSync("bash", ["-c", `command -v ${bin}`]).status === 0;

/** apt-get install the packages the selected rows need and the machine lacks (or say which). */
export function ensureTools(opts, log) {
  const wants = (group) =>
    !opts.only || [...opts.only].some((s) => s === group || s.startsWith(`${group}-`) || s.startsWith(`${group}/`));
  const want = [["curl", "curl"]];
  if (wants("ss") || wants("plugin") || wants("outline")) {
    want.push(["ss-server", "shadowsocks-libev"], ["ss-local", "shadowsocks-libev"]);
  }
  if (wants("plugin")) want.push(["ss-v2ray-plugin", "shadowsocks-v2ray-plugin"]);
  if (wants("vless")) want.push(["v2ray", "v2ray"]);
  if (wants("validate")) want.push(["wrk", "wrk"]);
  const missing = [...new Set(want.filter(([bin]) => !has(bin)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  if (!opts.install) {
    throw new Error(`missing ${missing.join(", ")} (apt-get install ${missing.join(" ")}), or drop --no-install`);
  }
  if (!has("apt-get")) throw new Error(`missing ${missing.join(", ")} and no apt-get to install them`);
  const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
  log(`installing ${missing.join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => {
    const r = spawnSync(sudo[0] ?? args[0], [...sudo.slice(1), ...(sudo.length ? args : args.slice(1))], {
      env,
      encoding: "utf8",
      timeout: 240_000,
    });
    if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${(r.stderr || r.error?.message || "").slice(-800)}`);
  };
  run(["apt-get", "update", "-qq"]);
  run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]);
}

/** The version of every program a run measures ("?" when it cannot tell). */
export function versions(root) {
  const first = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
    return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim())?.trim() ?? "?";
  };
  const deb = (pkg) => {
    const r = spawnSync("dpkg-query", ["-W", "-f=${Version}", pkg], { encoding: "utf8" });
    return r.status === 0 && r.stdout ? r.stdout : "?";
  };
  return {
    node: process.version.slice(1),
    bun: first(join(root, "node_modules/.bin/bun"), ["--version"]),
    deno: first(join(root, "node_modules/.bin/deno"), ["--version"]).match(/[\d.]+/)?.[0] ?? "?",
    curl: first("curl", ["--version"]).match(/curl ([\d.]+)/)?.[1] ?? "?",
    "shadowsocks-libev": deb("shadowsocks-libev"),
    "shadowsocks-v2ray-plugin": deb("shadowsocks-v2ray-plugin"),
    wrk: deb("wrk"),
    v2ray: has("v2ray") ? (first("v2ray", ["-version"]).match(/V2Ray ([\d.]+)/)?.[1] ?? "?") : "missing",
  };
}
