// Time to the first byte of the first request on a fresh session, without and with early data
// (docs/03 §13): from opening the session to the first byte of the target's answer, where the
// request is written on a stream opened either after auth_result (without) or right behind the
// hello (with). The real gateway in this process (direct mode), the real backend app (PGlite)
// over loopback HTTP, a loopback TCP target that answers at once; rounds alternate the two.
// Between client and gateway, a relay in this process delays every chunk by RTT/2 each way, so
// the round trip early data saves is a known one (loopback alone has almost none to save).
// A measurement, not a test.
//   node --import tsx bench/first-byte.ts [N=30] [RTT_MS=40]   (or bun …, deno run -A …)
// Prints a markdown line per variant, then one JSON line:
//   {"runtime","n","rttMs","without":{"p10","p50","p90"},"with":{…}}  (milliseconds)
import net from "node:net";
import { ClientSession } from "../client/session.ts";
import type { TunnelStream } from "../client/tunnel-stream.ts";
import { parseAccessKey } from "../protocol/access-key.ts";
import { runtime } from "../runtime/index.ts";
import { startStack } from "../test/e2e/stack.ts";

const n = Number(process.argv[2] ?? 30);
const rttMs = Number(process.argv[3] ?? 40);
const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: target\r\n\r\n");

// The target: answers the first bytes it gets at once.
const target = net.createServer((sock) => {
  sock.once("data", () => sock.end("HTTP/1.1 204 No Content\r\n\r\n"));
  sock.on("error", () => {});
});
await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
const targetPort = (target.address() as net.AddressInfo).port;

/** A TCP relay to 127.0.0.1:port that holds every chunk `oneWayMs` in each direction (order kept). */
async function delayRelay(port: number, oneWayMs: number): Promise<net.Server> {
  const relay = net.createServer((a) => {
    const b = net.connect(port, "127.0.0.1");
    for (const [from, to] of [[a, b], [b, a]] as const) {
      from.on("data", (d) => setTimeout(() => to.write(d), oneWayMs));
      from.on("close", () => setTimeout(() => to.destroy(), oneWayMs));
      from.on("error", () => {});
    }
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  return relay;
}

const stack = await startStack({
  backend: "app",
  upstream: "direct",
  logLevel: "error",
  env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" },
});

/** One fresh session and one request on it: milliseconds from open() to the answer's first byte. */
async function once(key: ReturnType<typeof parseAccessKey> & { ok: true }, early: boolean): Promise<number> {
  const t0 = performance.now();
  let firstByte!: () => void;
  const answered = new Promise<void>((r) => (firstByte = r));
  const request = (st: TunnelStream) => {
    st.start({ data: () => firstByte(), end: () => {}, drain: () => {}, close: () => {} });
    st.write(REQUEST);
  };
  const t = { host: "127.0.0.1", port: targetPort };
  const s = await ClientSession.open({ key: key.key, earlyData: early }, {
    helloSent: (s) => early && request(s.openStream(t)),
  });
  if (!early) request(s.openStream(t));
  await answered;
  const ms = performance.now() - t0;
  s.close();
  return ms;
}

const times = { without: [] as number[], with: [] as number[] };
let relay: net.Server | undefined;
try {
  const gw = await stack.gateway();
  relay = await delayRelay(gw.port, rttMs / 2);
  const device = await stack.backend.device();
  const key = parseAccessKey(stack.accessKey(device, (relay.address() as net.AddressInfo).port));
  if (!key.ok) throw new Error(key.error.message);
  // Warm up (JIT, the backend's first queries), then alternate.
  for (let i = -5; i < n; i++) {
    for (const early of [false, true]) {
      const ms = await once(key, early);
      if (i >= 0) times[early ? "with" : "without"].push(ms);
    }
  }
} finally {
  relay?.close();
  target.close();
  await stack.close();
}

const q = (v: number[], p: number) => Number(v[Math.min(v.length - 1, Math.floor(p * v.length))]!.toFixed(2));
const summary = (v: number[]) => (v.sort((a, b) => a - b), { p10: q(v, 0.1), p50: q(v, 0.5), p90: q(v, 0.9) });
const result = { runtime, n, rttMs, without: summary(times.without), with: summary(times.with) };
console.log(`first byte of the first request on a fresh session, ms: median (p10–p90), N = ${n}, RTT ${rttMs} ms, ${runtime}`);
for (const v of ["without", "with"] as const) {
  console.log(`| ${runtime} | ${v} early data | ${result[v].p50} (${result[v].p10}–${result[v].p90}) |`);
}
console.log(JSON.stringify(result));
process.exit(0);
