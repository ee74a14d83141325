// How long a refused hello takes to be answered, per reason (docs/07 "No oracle"): the real
// gateway in this process and the real backend app (PGlite) served over loopback HTTP, as in the
// e2e stack; each of the five credential refusals N times over WebSocket (and HTTP/2 where the
// runtime serves it), interleaved, one at a time; the time from the hello's write to the first
// answer byte at the client's socket. Once with GATEWAY_AUTH_FAIL_DELAY at its default and
// once at 0 (the work alone). Prints a markdown table of medians (p10–p90). A measurement, not a test.
//   node --import tsx bench/auth-timing.ts [N]       (or bun bench/auth-timing.ts, deno run -A bench/auth-timing.ts)
import { gatewayTransports, runtime } from "../runtime/index.ts";
import { h2Session, helloText, refusedHellos, session, wsFrame } from "../test/e2e/probe-kit.ts";
import { startStack } from "../test/e2e/stack.ts";

const n = Number(process.argv[2] ?? 40);
const transports = gatewayTransports.filter((t) => t === "ws" || t === "h2");

const stack = await startStack({ backend: "app", logLevel: "error" });
const rows: string[] = [];
try {
  const hellos = await refusedHellos(stack.backend);
  for (const delay of ["200ms", "0ms"]) {
    const gw = await stack.gateway({
      GATEWAY_AUTH_FAIL_DELAY: delay,
      GATEWAY_HELLO_FAIL_LIMIT: "0",
      GATEWAY_HELLO_FAIL_DEVICE_LIMIT: "0",
    });
    const times = new Map<string, number[]>();
    // Warm up (JIT, the backend's first queries), then rounds over every reason and transport.
    for (let round = -3; round < n; round++) {
      for (const t of transports) {
        for (const [name, id, token] of hellos) {
          const ms = t === "ws"
            ? (await session(gw.port, "/ws", [wsFrame(1, helloText(id, token))], 600)).firstByteAfterMs
            : (await h2Session(gw.port, "/ws", [helloText(id, token)], 600)).firstByteAfterMs;
          if (round < 0 || ms === undefined) continue;
          const key = `${t}\t${name}`;
          times.set(key, [...(times.get(key) ?? []), ms]);
        }
      }
    }
    await gw.close();
    for (const t of transports) {
      const cells = hellos.map(([name]) => {
        const v = (times.get(`${t}\t${name}`) ?? []).sort((a, b) => a - b);
        const q = (p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))]!.toFixed(1);
        return `${q(0.5)} (${q(0.1)}–${q(0.9)})`;
      });
      rows.push(`| ${runtime} | ${t} | ${delay} | ${cells.join(" | ")} |`);
    }
  }
  console.log(`hello → first answer byte at the client, ms: median (p10–p90), N = ${n} per cell\n`);
  console.log(`| runtime | transport | GATEWAY_AUTH_FAIL_DELAY | ${hellos.map(([name]) => name).join(" | ")} |`);
  console.log(`|---|---|---|${"---|".repeat(5)}`);
  for (const r of rows) console.log(r);
} finally {
  await stack.close();
}
