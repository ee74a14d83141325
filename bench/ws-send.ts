// CPU per GiB of the gateway's WebSocket send and receive paths, alone: the runtime's
// serveGateway (TLS + WebSocket) in this process, a `ws` client over node:tls in a child process
// (as `httvps connect` runs it). Rounds alternate how the server sends bulk data — "parts"
// (SessionSocket.sendParts where the adapter has it: Node writes its own frames) and "join" (head
// and payload joined, then send(): the path before issue 17) — and then an upload round (the
// client masks, the server unmasks: where `bufferutil` counts; compare runs with and without
// WS_NO_BUFFER_UTIL=1). CPU time is what it measures, not throughput: on a shared machine it
// moves far less than MB/s. A measurement, not a test.
//   node --import tsx bench/ws-send.ts [MiB=256] [ROUNDS=3]   (or bun …, deno run -A …)
// Prints one line per round and direction (round 0: warm-up, not counted), then one JSON line of the medians (CPU-s/GiB).
import { spawn } from "node:child_process";
import { createDevCertificate } from "../gateway/certs.ts";
import { runtime, serveGateway, type SessionSocket, WS_HIGH_WATER } from "../runtime/index.ts";
import { joinParts } from "../runtime/node-ws-frame.ts";

const CHUNK = 64 * 1024;
const HEAD = Uint8Array.of(2, 4, 0x73, 0x31, 0x32, 0x33); // a compact stream_data head, id "s123"

if (process.argv[2] === "--client") await client(Number(process.argv[3]));
else await server(Number(process.argv[2] ?? 256), Number(process.argv[3] ?? 3));

async function server(mib: number, rounds: number): Promise<void> {
  const cert = await createDevCertificate();
  const total = mib * 1024 * 1024;
  let sock: SessionSocket | undefined;
  let onMessage: (m: string | Uint8Array) => void = () => {};
  let onDrain: () => void = () => {};
  const gw = await serveGateway({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    wsPath: "/ws",
    fetch: () => new Response("", { status: 404 }),
    accept: (s) => {
      sock = s;
      return { message: (m) => onMessage(m), drain: () => onDrain(), close: () => {} };
    },
  });
  const argv = runtime === "deno" ? ["run", "-A", import.meta.filename!] : runtime === "bun" ? [import.meta.filename!] : [
    "--import",
    "tsx",
    new URL(import.meta.url).pathname,
  ];
  const child = spawn(process.execPath, [...argv, "--client", String(gw.port)], { stdio: ["ignore", "pipe", "inherit"] });
  while (!sock) await new Promise((r) => setTimeout(r, 10));
  const s = sock;
  const next = () => new Promise<string>((r) => (onMessage = (m) => typeof m === "string" && r(m)));
  const results: Record<string, number[]> = { parts: [], join: [], upload: [], uploadClient: [] };
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const gib = total / 2 ** 30;
  // Round 0 warms up (JIT, TLS buffers) and is not counted.
  for (let round = 0; round <= rounds; round++) {
    for (const mode of (process.env.WS_SEND_MODES ?? "parts,join").split(",") as ("parts" | "join")[]) {
      const body = new Uint8Array(CHUNK - HEAD.length).fill(round);
      const t0 = cpu();
      const done = next();
      s.send(`down ${total}`);
      let sent = 0;
      const pump = () => {
        while (sent < total && s.bufferedAmount <= WS_HIGH_WATER) {
          if (mode === "parts" && s.sendParts) s.sendParts(HEAD, body);
          else s.send(joinParts(HEAD, body));
          sent += CHUNK;
        }
      };
      onDrain = pump;
      pump();
      const clientCpu = Number((await done).split(" ")[1]);
      const perGib = (cpu() - t0) / gib;
      if (round > 0) results[mode]!.push(perGib);
      console.log(
        `${runtime} round ${round} down/${mode}: server ${perGib.toFixed(2)} CPU-s/GiB, client ${(clientCpu / gib).toFixed(2)}`,
      );
    }
    let got = 0;
    const t0 = cpu();
    let serverCpu = 0;
    const done = new Promise<string>((r) =>
      onMessage = (m) => {
        if (typeof m === "string") return r(m); // the client's CPU, once it sent everything
        if ((got += m.length) >= total) serverCpu = cpu() - t0;
      }
    );
    s.send(`up ${total}`);
    const clientCpu = Number((await done).split(" ")[1]);
    while (got < total) await new Promise((r) => setTimeout(r, 5));
    const perGib = serverCpu / gib;
    if (round > 0) results.upload!.push(perGib);
    if (round > 0) results.uploadClient!.push(clientCpu / gib);
    console.log(
      `${runtime} round ${round} upload: server ${perGib.toFixed(2)} CPU-s/GiB, client ${(clientCpu / gib).toFixed(2)}`,
    );
  }
  const median = (xs: number[]) => xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN;
  console.log(JSON.stringify({
    runtime,
    mib,
    rounds,
    bufferutil: !process.env.WS_NO_BUFFER_UTIL,
    parts: +median(results.parts!).toFixed(2),
    join: +median(results.join!).toFixed(2),
    upload: +median(results.upload!).toFixed(2),
    uploadClient: +median(results.uploadClient!).toFixed(2),
  }));
  child.kill();
  await gw.close();
  process.exit(0);
}

/** The reading end: counts what arrives, answers with its own CPU; sends when asked to upload. */
async function client(port: number): Promise<void> {
  const tls = await import("node:tls");
  const { WebSocket } = await import("ws");
  const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, {
    perMessageDeflate: false,
    createConnection: ((o: object) => tls.connect({ ...o, rejectUnauthorized: false })) as never,
  });
  let want = 0;
  let got = 0;
  let t0 = 0;
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      const [what, n] = data.toString().split(" ");
      if (what === "down") [want, got, t0] = [Number(n), 0, cpu()];
      else void upload(Number(n));
      return;
    }
    got += data.length;
    if (got >= want && want > 0) {
      want = 0;
      ws.send(`done ${cpu() - t0}`);
    }
  });
  const upload = async (n: number) => {
    const chunk = new Uint8Array(CHUNK).fill(7);
    const t0 = cpu();
    for (let sent = 0; sent < n; sent += CHUNK) {
      ws.send(chunk);
      if (ws.bufferedAmount > WS_HIGH_WATER) {
        while (ws.bufferedAmount > WS_HIGH_WATER / 2) await new Promise((r) => setTimeout(r, 1));
      }
    }
    ws.send(`sent ${cpu() - t0}`);
  };
}
