// The rows of a bench run: which ones --only and --runtimes select, and for each throughput row
// how its chain starts (`start()` → { socksPort, chain: [proc…] }): the peers of
// docs/06-performance.md, HTTVPS in direct mode (over ws and h2) and in outline mode through a
// local ss-server, and the apps' rows: ss-local + ss-v2ray-plugin (the client of the plugin
// peer rows) against an HTTVPS gateway's device path, direct and outline. `bench` is the run's
// context from bench/run.mjs: { root, opts, dir, certs, backend, profileDir }.
import { join } from "node:path";
import { GATEWAY_API_KEY, startClient, startGateway } from "./httvps.mjs";
import { CIPHER_SHORT, selected } from "./options.mjs";
import { pluginClientOptions, startSs, startSsLocal, startSsServer, startVless } from "./peers.mjs";
import { SMALL, SMALL_PEERS } from "./small.mjs";

/** The peer rows selected: raw loopback, ss-libev per cipher, ss-libev + v2ray-plugin, VLESS. */
export function peerRows({ opts, certs, dir }) {
  const rows = [
    { id: "raw", group: "raw", label: "raw loopback (curl → target)", start: () => Promise.resolve({ socksPort: 0, chain: [] }) },
    ...opts.ciphers.map((m) => ({
      id: `ss-${CIPHER_SHORT[m]}`,
      group: "ss",
      label: `ss-libev ${m}`,
      start: () => startSs({ method: m }),
    })),
    {
      id: "plugin-mux0",
      group: "plugin",
      label: "ss-libev + v2ray-plugin WS+TLS, mux=0",
      start: () => startSs({ method: "chacha20-ietf-poly1305", plugin: true, mux: 0, certs }),
    },
    {
      id: "plugin-mux1",
      group: "plugin",
      label: "ss-libev + v2ray-plugin WS+TLS, mux=1",
      start: () => startSs({ method: "chacha20-ietf-poly1305", plugin: true, mux: 1, certs }),
    },
    { id: "vless", group: "vless", label: "v2ray VLESS WS+TLS", start: () => startVless({ certs, dir }) },
  ];
  // The small-request rows of the peers HTTVPS is held against there, a chain of their own each,
  // and raw: curl alone, the floor that shows the load generator is not the bottleneck.
  const small = rows.filter((r) => r.id === "raw" || SMALL_PEERS.includes(r.id)).map((r) => ({
    ...r,
    id: `small/${r.id}`,
    group: "small",
    kind: "small",
    label: `${r.label}, ${SMALL.requests} small requests`,
  }));
  return [...rows, ...small].filter((r) => selected(opts, r.group, r.id));
}

/** The runtimes (and for outline, the ciphers) of every HTTVPS row group that was selected. */
export function httvpsSelection(opts) {
  const on = (group, id) => opts.runtimes.filter((rt) => selected(opts, group, id(rt)));
  const want = {
    direct: on("direct", (rt) => `direct/${rt}`),
    directPad: on("direct-pad", (rt) => `direct-pad/${rt}`),
    // Direct mode again with GATEWAY_WORKERS=2: the client's one session lands on one worker.
    workers: on("workers", (rt) => `direct-w2/${rt}`),
    // Bun's gateway serves no HTTP/2 (Bun.serve has none): an h2 row there would measure the ws fallback.
    h2: on("h2", (rt) => `h2/${rt}`).filter((rt) => rt !== "bun"),
    outline: opts.ciphers.map((m) => [m, on("outline", (rt) => `outline-${CIPHER_SHORT[m]}/${rt}`)]).filter(([, rts]) =>
      rts.length
    ),
    idle: on("idle", (rt) => `idle/${rt}`),
    // The apps' rows: the mode of the gateway, the plugin's mux, the runtime.
    apps: ["direct", "outline"].flatMap((mode) =>
      [0, 1].flatMap((mux) =>
        on("apps", (rt) => `apps-${mode}-mux${mux}/${rt}`).map((rt) => ({ mode, mux, rt, id: `apps-${mode}-mux${mux}/${rt}` }))
      )
    ),
    floor: on("idle", (rt) => `floor/${rt}`),
    bulk: on("idle", (rt) => `bulk/${rt}`),
    tls: on("tls", (rt) => `tls/${rt}`),
    early: on("early", (rt) => `early/${rt}`),
    small: on("small", (rt) => `small/direct-${rt}`),
  };
  want.any = Object.values(want).some((v) => v.length > 0);
  return want;
}

/**
 * The runtime flags that put process `who` ("gateway", "client") of row `id` under --cpu-prof
 * when that row is the profiled one; Node and Bun both write a Chrome .cpuprofile on exit.
 */
function profileFlags({ opts, profileDir }, rt, id, who) {
  if (opts.cpuProf !== id || rt === "deno") return [];
  const dir = join(profileDir, who);
  return rt === "bun" ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : ["--cpu-prof", "--cpu-prof-dir", dir];
}

/**
 * client → gateway of runtime `rt` (both under --cpu-prof when this is the profiled row). The
 * client runs without padding unless `padding` (the direct-pad rows): the other rows keep
 * measuring what they always did, and padding's cost is direct-pad beside direct.
 */
function httvpsChain(bench, { rt, mode, device, id, extra = [], transport = "ws", padding = false, env }) {
  const { root, certs, dir, backend } = bench;
  return async () => {
    const nodeFlags = profileFlags(bench, rt, id, "gateway");
    const gw = await startGateway(root, rt, { mode, backendUrl: backend.url, certs, dir, nodeFlags, env });
    gw.proc.role = "gateway";
    const cl = await startClient(root, rt, {
      gatewayPort: gw.port,
      device,
      certs,
      dir,
      nodeFlags: profileFlags(bench, rt, id, "client"),
      transport,
      args: padding ? [] : ["--no-padding"],
    }).catch(async (e) => {
      await gw.proc.stop();
      throw e;
    });
    cl.proc.role = "client";
    return { socksPort: cl.socksPort, chain: [cl.proc, gw.proc, ...extra] };
  };
}

/** ss-local + ss-v2ray-plugin → the device's path at a gateway of runtime `rt` in `mode` (the gateway under --cpu-prof when profiled). */
function appsChain(bench, { rt, mode, app, mux, id, extra = [] }) {
  const { root, certs, dir, backend } = bench;
  return async () => {
    const nodeFlags = profileFlags(bench, rt, id, "gateway");
    const gw = await startGateway(root, rt, { mode, backendUrl: backend.url, certs, dir, nodeFlags });
    gw.proc.role = "gateway";
    const local = await startSsLocal({
      serverPort: gw.port,
      method: app.cipher,
      password: app.secret,
      pluginOpts: pluginClientOptions({ certs, mux, path: `${app.path}/tcp` }),
    }).catch(async (e) => {
      await gw.proc.stop();
      throw e;
    });
    local.proc.role = "ss-local";
    return { socksPort: local.socksPort, chain: [local.proc, gw.proc, ...extra] };
  };
}

/** The gateway's own view of a device: validate it once, which pins it to a node (outline). */
async function validate(backend, device) {
  const res = await fetch(backend.url + "/api/v1/auth/validate-device", {
    method: "POST",
    headers: { authorization: `Bearer ${GATEWAY_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ device_id: device.device_id, token: device.token, client_version: "bench" }),
  });
  return res.json();
}

/** The HTTVPS throughput rows selected (`want` from httvpsSelection), their devices and nodes made on the backend. */
export async function httvpsRows(bench, want) {
  const { backend } = bench;
  const rows = [];
  // Direct mode over each transport: a device of its own per transport.
  const direct = [
    { group: "direct", runtimes: want.direct, device: "bench-direct", label: "HTTVPS direct", mode: "direct", transport: "ws" },
    {
      group: "direct-pad",
      runtimes: want.directPad,
      device: "bench-direct-pad",
      label: "HTTVPS direct, padding",
      mode: "direct-pad",
      transport: "ws",
      padding: true,
    },
    {
      group: "h2",
      runtimes: want.h2,
      device: "bench-direct-h2",
      label: "HTTVPS direct over HTTP/2",
      mode: "direct-h2",
      transport: "h2",
    },
    {
      group: "workers",
      prefix: "direct-w2",
      runtimes: want.workers,
      device: "bench-direct-w2",
      label: "HTTVPS direct, GATEWAY_WORKERS=2",
      mode: "direct-w2",
      transport: "ws",
      env: { GATEWAY_WORKERS: "2" },
    },
  ];
  for (const d of direct.filter((d) => d.runtimes.length)) {
    const device = await backend.admin("POST", "/api/v1/devices", { name: d.device });
    for (const rt of d.runtimes) {
      const id = `${d.prefix ?? d.group}/${rt}`;
      rows.push({
        id,
        group: d.group,
        label: `${d.label} (${rt})`,
        httvps: true,
        mode: d.mode,
        runtime: rt,
        start: httvpsChain(bench, { rt, mode: "direct", device, id, transport: d.transport, padding: d.padding, env: d.env }),
      });
    }
  }
  // The small-request rows: direct mode over a WebSocket, a device and a chain of their own.
  if (want.small.length) {
    const device = await backend.admin("POST", "/api/v1/devices", { name: "bench-small" });
    for (const rt of want.small) {
      const id = `small/direct-${rt}`;
      rows.push({
        id,
        group: "small",
        kind: "small",
        label: `HTTVPS direct (${rt}), ${SMALL.requests} small requests`,
        mode: "small",
        runtime: rt,
        start: httvpsChain(bench, { rt, mode: "direct", device, id }),
      });
    }
  }
  // One ss-server per cipher as the Outline node, and devices pinned to it: while a device is
  // validated for the first time its node is the only one enabled, so every later session of
  // that device (all of its rows, on every runtime, native or app) lands on that cipher's node.
  const nodes = new Map();
  const pinnedDevice = async (m, name) => {
    if (!nodes.has(m)) {
      const ss = await startSsServer(m, `ss-server (node) ${m}`);
      ss.proc.role = "ss-server";
      ss.proc.ownedByRow = false;
      const node = await backend.admin("POST", "/api/v1/nodes", {
        name: `bench-${CIPHER_SHORT[m]}`,
        host: "127.0.0.1",
        port: ss.port,
        method: m,
        password: ss.password,
      });
      nodes.set(m, { ss, node });
    }
    const { ss, node } = nodes.get(m);
    const others = [...nodes.values()].filter((n) => n.node !== node);
    for (const n of others) await backend.admin("PATCH", `/api/v1/nodes/${n.node.id}`, { enabled: false });
    const device = await backend.admin("POST", "/api/v1/devices", { name });
    const v = await validate(backend, device);
    for (const n of others) await backend.admin("PATCH", `/api/v1/nodes/${n.node.id}`, { enabled: true });
    if (v.valid !== true || v.assignment?.port !== ss.port || v.assignment?.method !== m) {
      throw new Error(
        `the ${m} device was not pinned to its node: ${
          JSON.stringify({ ...v, assignment: v.assignment && { ...v.assignment, password: "…" } })
        }`,
      );
    }
    return { device, ss };
  };
  for (const [m, rts] of want.outline) {
    const { device, ss } = await pinnedDevice(m, `bench-outline-${CIPHER_SHORT[m]}`);
    for (const rt of rts) {
      const id = `outline-${CIPHER_SHORT[m]}/${rt}`;
      rows.push({
        id,
        group: "outline",
        label: `HTTVPS outline ${m} (${rt})`,
        httvps: true,
        mode: "outline",
        runtime: rt,
        cipher: m,
        start: httvpsChain(bench, { rt, mode: "outline", device, id, extra: [ss.proc] }),
      });
    }
  }
  // The apps' rows: the device's own key is chacha20-ietf-poly1305 (every app's), and so is the
  // node behind the outline ones. Each is held against the plugin peer row of the same mux.
  const appDevices = {};
  for (const a of want.apps) {
    appDevices[a.mode] ??= a.mode === "outline"
      ? await pinnedDevice("chacha20-ietf-poly1305", "bench-apps-outline")
      : { device: await backend.admin("POST", "/api/v1/devices", { name: "bench-apps-direct" }) };
    const { device, ss } = appDevices[a.mode];
    rows.push({
      id: a.id,
      group: "apps",
      label: `ss-libev + v2ray-plugin mux=${a.mux} → HTTVPS gateway, ${a.mode} (${a.rt})`,
      mode: `apps-${a.mode}`,
      runtime: a.rt,
      cipher: device.app.cipher,
      peer: `plugin-mux${a.mux}`,
      start: appsChain(bench, { rt: a.rt, mode: a.mode, app: device.app, mux: a.mux, id: a.id, extra: ss ? [ss.proc] : [] }),
    });
  }
  return rows;
}
