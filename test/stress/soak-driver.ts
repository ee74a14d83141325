// One load driver of the soak test (soak.stress.ts), a child process on the runtime under test:
// holds thousands of authenticated sessions over that runtime's own WebSocket client
// (TunnelClient) and, on command, runs mixed checksummed streams over a subset of them in turn.
//   <runtime> test/stress/soak-driver.ts PORT CA_FILE DEVICES_FILE ECHO_PORT
// Commands on stdin, one JSON answer per line on stdout (bench/lib/loader.mjs):
//   open N                   → N more sessions, spread over the devices: {open, failed, error, ms}
//   soak SECONDS WORKERS SEED ACTIVE → mixed streams on the first ACTIVE sessions, in turn, until
//                            SECONDS have passed: counts, failures, latencies
//   count                    → {open}: sessions still open
//   close                    → close them all and exit
// Every payload is a slice of a buffer filled from a seeded PRNG, at seeded offsets and sizes;
// the echo that comes back is compared by length and sha256 with what was sent.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { pool, serveCommands } from "../../bench/lib/loader.mjs";
import { prng } from "../../protocol/fuzz.testing.ts";
import { TunnelClient } from "../e2e/tunnel-client.ts";

const [port, caFile, devicesFile, echoPort] = process.argv.slice(2);
const ca = readFileSync(caFile!, "utf8");
const devices = JSON.parse(readFileSync(devicesFile!, "utf8")) as Array<{ device_id: string; token: string }>;
const target = { host: "127.0.0.1", port: Number(echoPort) };
/** Handshakes at once, as bench/idle-sessions.mjs. */
const IN_FLIGHT = 64;
const MiB = 1024 * 1024;

const sessions: TunnelClient[] = [];
let failed = 0;
let lastError = "";

async function open(n: number) {
  const t0 = Date.now();
  await pool(n, IN_FLIGHT, async () => {
    const device = devices[(sessions.length + failed) % devices.length]!;
    try {
      sessions.push(await TunnelClient.session(Number(port), ca, device, 60_000));
    } catch (e) {
      failed++;
      lastError = String((e as Error).message ?? e);
    }
  });
  return { open: openCount(), failed, error: lastError || undefined, ms: Date.now() - t0 };
}

const openCount = () => sessions.filter((s) => s.closed === null).length;

type Kind = "small" | "request/response" | "bulk";

interface SoakResult {
  streams: number;
  bytes: number;
  byKind: Record<Kind, { streams: number; bytes: number }>;
  /** Streams whose echo differed, lost bytes or closed with an error (the first few described). */
  bad: number;
  badExamples: string[];
  /** Sessions that carried at least one stream. */
  sessionsUsed: number;
  /** stream_open sent → first echoed byte, ms, one per stream. */
  firstByteMs: number[];
  open: number;
}

/** One stream: send, half-close, read the echo to the end; returns what went wrong, or "". */
async function stream(c: TunnelClient, kind: Kind, payload: Uint8Array, rounds: number, latencies: number[]): Promise<string> {
  const id = c.newId();
  const got = createHash("sha256");
  let first = 0;
  const t0 = performance.now();
  const onData = (chunk: Uint8Array) => {
    if (!first) first = performance.now();
    got.update(chunk);
  };
  try {
    if (kind === "small") {
      // The request rides in stream_open, the half-close right behind it.
      const rx = c.open(id, target, payload, onData);
      c.send({ type: "stream_end", stream_id: id });
      await c.until(() => rx.close !== null, `small ${id}`, 60_000);
    } else {
      const rx = c.open(id, target, undefined, onData);
      // request/response: each request's echo is awaited before the next goes out.
      const step = Math.ceil(payload.length / rounds);
      for (let at = 0; at < payload.length; at += step) {
        const part = payload.subarray(at, at + step);
        await c.write(id, part);
        if (kind === "request/response") {
          await c.until(() => rx.close !== null || rx.received >= at + part.length, `response ${id}`, 60_000);
        }
      }
      c.send({ type: "stream_end", stream_id: id });
      await c.until(() => rx.close !== null, `${kind} ${id}`, 120_000);
    }
    const rx = c.streams.get(id)!;
    latencies.push(first ? first - t0 : NaN);
    const want = createHash("sha256").update(payload).digest("hex");
    if (rx.close!.code !== undefined) {
      return `${kind} ${id}: stream_close ${rx.close!.code} ${
        rx.close!.message ?? ""
      } after ${rx.received}/${payload.length} bytes`;
    }
    if (!rx.ended) return `${kind} ${id}: closed without stream_end`;
    if (rx.received !== payload.length) return `${kind} ${id}: ${rx.received} bytes back of ${payload.length}`;
    if (got.digest("hex") !== want) return `${kind} ${id}: sha256 differs (${payload.length} bytes)`;
    return "";
  } catch (e) {
    return `${kind} ${id}: ${(e as Error).message}`;
  } finally {
    c.streams.delete(id); // a session carries many streams over the soak; keep the map small
  }
}

async function soak(seconds: number, workers: number, seed: number, active: number): Promise<SoakResult> {
  const rnd = prng(seed);
  // 8 MiB of seeded bytes; each payload is a slice at a seeded offset.
  const words = new Uint32Array(2 * MiB);
  for (let i = 0; i < words.length; i++) words[i] = rnd();
  const bytes = new Uint8Array(words.buffer);
  const res: SoakResult = {
    streams: 0,
    bytes: 0,
    byKind: { small: { streams: 0, bytes: 0 }, "request/response": { streams: 0, bytes: 0 }, bulk: { streams: 0, bytes: 0 } },
    bad: 0,
    badExamples: [],
    sessionsUsed: 0,
    firstByteMs: [],
    open: 0,
  };
  const used = new Set<number>();
  const deadline = Date.now() + seconds * 1000;
  const subset = Math.min(active, sessions.length);
  let cursor = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      // The next session of the subset, round-robin: each carries streams again and again.
      cursor = (cursor + 1) % subset;
      const at = cursor;
      const c = sessions[at]!;
      if (c.closed) continue;
      const pick = rnd() % 100;
      // Mostly small request/response streams, some chatty ones, a few bulk transfers of up to 4 MiB.
      const [kind, size, rounds]: [Kind, number, number] = pick < 70
        ? ["small", 1 + (rnd() % 4096), 1]
        : pick < 95
        ? ["request/response", 1024 + (rnd() % (256 * 1024)), 2 + (rnd() % 4)]
        : ["bulk", 256 * 1024 + (rnd() % (4 * MiB - 256 * 1024)), 1];
      const off = rnd() % (bytes.length - size);
      const problem = await stream(c, kind, bytes.subarray(off, off + size), rounds, res.firstByteMs);
      used.add(at);
      res.streams++;
      res.bytes += size;
      res.byKind[kind].streams++;
      res.byKind[kind].bytes += size;
      if (problem) {
        res.bad++;
        if (res.badExamples.length < 5) res.badExamples.push(problem);
      }
    }
  };
  // The full time even with no workers: held sessions alone are a soak too.
  await Promise.all([
    ...Array.from({ length: workers }, worker),
    new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()))),
  ]);
  res.sessionsUsed = used.size;
  res.open = openCount();
  return res;
}

await serveCommands({
  open: (n) => open(Number(n)),
  soak: (seconds, workers, seed, active) => soak(Number(seconds), Number(workers), Number(seed), Number(active)),
  count: () => ({ open: openCount() }),
});
for (const s of sessions) {
  try {
    s.socket.close(1000, "done");
  } catch {
    // already closed
  }
}
process.exit(0);
