import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { memoryLogger } from "../logging/logger.ts";
import type { ReportBody, UsageEvent } from "./auth.ts";
import { createGatewayMetrics } from "./metrics.ts";
import { MAX_EVENTS_PER_REPORT, UsageReporter, type UsageSource } from "./usage.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function source(id: string): UsageSource & { bytesUp: number; bytesDown: number } {
  return { session_id: id, device_id: "dev-" + id, bytesUp: 0, bytesDown: 0 };
}

function backend() {
  const bodies: ReportBody[] = [];
  let failing = false;
  return {
    bodies,
    events: () => bodies.flatMap((b) => b.events),
    setFailing(v: boolean) {
      failing = v;
    },
    report: async (body: ReportBody) => {
      await sleep(1);
      if (failing) throw Object.assign(new Error("backend down"), { code: "unreachable" });
      bodies.push(body);
      return body.events.length;
    },
  };
}

describe("UsageReporter", () => {
  test("open, usage deltas (zero ones too: the heartbeat), close with the final delta", async () => {
    const b = backend();
    const r = new UsageReporter({ gatewayId: "gw1", report: b.report, flushIntervalMs: 60_000, promptDelayMs: 1 });
    const s = source("a");
    r.open(s, "node-1");
    s.bytesUp = 100;
    s.bytesDown = 1000;
    await r.flush();
    await r.flush(); // nothing moved: still reported, as a heartbeat
    s.bytesUp = 150;
    s.bytesDown = 1001;
    r.close(s, "client_closed");
    await r.stop();
    const expected: UsageEvent[] = [
      { type: "session_open", session_id: "a", device_id: "dev-a", node_id: "node-1" },
      { type: "session_usage", session_id: "a", device_id: "dev-a", bytes_up: 100, bytes_down: 1000 },
      { type: "session_usage", session_id: "a", device_id: "dev-a", bytes_up: 0, bytes_down: 0 },
      { type: "session_close", session_id: "a", device_id: "dev-a", reason: "client_closed", bytes_up: 50, bytes_down: 1 },
    ];
    assert.deepEqual(b.events(), expected);
    assert.ok(b.bodies.every((body) => body.gateway_id === "gw1"));
    assert.equal(r.openSessions, 0);
  });

  test("open and close events go out promptly, without waiting for the interval", async () => {
    const b = backend();
    const r = new UsageReporter({ gatewayId: "gw1", report: b.report, flushIntervalMs: 60_000, promptDelayMs: 5 });
    r.start();
    r.open(source("p"), null);
    const deadline = Date.now() + 5000; // "promptly": well before the 60 s interval, however loaded the machine
    while (b.events().length === 0 && Date.now() < deadline) await sleep(5);
    assert.equal(b.events().length, 1);
    await r.stop();
  });

  test("the interval flush reports every open session", async () => {
    const b = backend();
    const r = new UsageReporter({ gatewayId: "gw1", report: b.report, flushIntervalMs: 20 });
    r.start();
    r.open(source("x"), null);
    r.open(source("y"), null);
    await sleep(120);
    await r.stop();
    const usage = b.events().filter((e) => e.type === "session_usage");
    assert.ok(usage.some((e) => e.session_id === "x") && usage.some((e) => e.session_id === "y"));
  });

  test("batches hold at most 1000 events", async () => {
    const b = backend();
    const r = new UsageReporter({ gatewayId: "gw1", report: b.report, flushIntervalMs: 60_000, promptDelayMs: 10_000 });
    for (let i = 0; i < 2500; i++) r.open(source(`s${i}`), null);
    await r.flush();
    assert.ok(b.bodies.length >= 3);
    assert.ok(b.bodies.every((body) => body.events.length <= MAX_EVENTS_PER_REPORT));
    const opens = b.events().filter((e) => e.type === "session_open").length;
    assert.equal(opens, 2500);
    await r.stop();
  });

  test("a failing backend: events are kept in order and retried; the queue is bounded, oldest dropped and counted", async () => {
    const b = backend();
    const metrics = createGatewayMetrics();
    const log = memoryLogger();
    const r = new UsageReporter({
      gatewayId: "gw1",
      report: b.report,
      flushIntervalMs: 60_000,
      maxQueue: 1500,
      promptDelayMs: 10_000,
      metrics,
      logger: log,
    });
    b.setFailing(true);
    const sources = Array.from({ length: 1000 }, (_, i) => source(`s${i}`));
    for (const s of sources) r.open(s, null);
    // Round k moves k bytes per session, so each delivered delta says which round it came from.
    const round = async (k: number) => {
      for (const s of sources) s.bytesUp += k;
      await r.flush();
    };
    await round(1); // +1000 usage events: 2000 > 1500, the 500 oldest opens go
    assert.equal(r.queued, 1500);
    assert.equal(r.dropped, 500);
    await round(2); // 2500 > 1500: the other 500 opens and 500 round-1 deltas go
    assert.equal(r.dropped, 1500);
    assert.match((await metrics.render()).body, /httvps_gateway_report_events_dropped_total 1500/);
    assert.match((await metrics.render()).body, /httvps_gateway_report_failures_total 2/);
    assert.equal(log.lines.filter((l) => l.includes("usage report failed")).length, 1, "one warning per outage, not per attempt");
    b.setFailing(false);
    await round(3); // trimmed again before sending: 500 round-2 and all round-3 deltas remain
    assert.equal(r.dropped, 2500);
    assert.equal(r.queued, 0);
    const ev = b.events();
    assert.equal(ev.length, 1500);
    assert.deepEqual(
      ev.map((e) => (e.type === "session_usage" ? e.bytes_up : -1)),
      [...new Array<number>(500).fill(2), ...new Array<number>(1000).fill(3)],
      "delivered oldest first, the newest kept",
    );
    assert.match(log.lines.join("\n"), /usage reports delivered again/);
    await r.stop();
  });

  test("stop() delivers what is queued, and a report that never answers does not hang the data path", async () => {
    const b = backend();
    const r = new UsageReporter({ gatewayId: "gw1", report: b.report, flushIntervalMs: 60_000, promptDelayMs: 10_000 });
    const s = source("z");
    r.open(s, null);
    s.bytesUp = 7;
    r.close(s, "shutdown");
    await r.stop();
    assert.deepEqual(
      b.events().map((e) => e.type),
      ["session_open", "session_close"],
    );
    // open()/close() never wait on the network: they return at once even while a report hangs.
    let release!: () => void;
    let calls = 0;
    const hanging = new UsageReporter({
      gatewayId: "g",
      // The first report hangs until released; later ones answer at once.
      report: (
        body,
      ) => (calls++ === 0 ? new Promise<number>((res) => (release = () => res(0))) : Promise.resolve(body.events.length)),
      flushIntervalMs: 60_000,
      promptDelayMs: 1,
    });
    hanging.open(source("h1"), null);
    await sleep(10);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) hanging.open(source(`h${i + 2}`), null);
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(hanging.queued, 100, "queued behind the hanging report");
    release();
    await hanging.stop();
    assert.equal(hanging.queued, 0);
  });

  test("every report names the gateway's version and runtime; a flush with nothing to send is an empty report (the heartbeat)", async () => {
    const b = backend();
    const r = new UsageReporter({
      gatewayId: "gw1",
      identity: { version: "9.9.9", runtime: "bun" },
      report: b.report,
      flushIntervalMs: 60_000,
      promptDelayMs: 10_000,
    });
    await r.flush();
    const first: ReportBody[] = [{ gateway_id: "gw1", gateway_version: "9.9.9", gateway_runtime: "bun", events: [] }];
    assert.deepEqual(b.bodies.slice(), first);
    r.open(source("v"), null);
    await r.flush();
    assert.equal(b.bodies.length, 2);
    assert.equal(b.bodies[1]!.gateway_version, "9.9.9");
    assert.deepEqual(b.bodies[1]!.events.map((e) => e.type), ["session_open", "session_usage"]);
    b.setFailing(true);
    await r.flush(); // a failed heartbeat costs nothing: nothing was queued
    await r.stop();
  });
});
