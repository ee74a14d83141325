// The outline upstream's failover with scripted nodes: which failures move a session, that
// concurrent streams share one re-validation, that a silent node's stream moves with its
// bytes, and what reaches the backend. The real Shadowsocks path is in test/e2e/outline.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { memoryLogger } from "../../logging/logger.ts";
import { type Dialer, type Duplex, type DuplexHandlers, DuplexInbox, StreamError, type Target } from "../../transport/stream.ts";
import type { Assignment, AuthOutcome } from "../auth.ts";
import type { UpstreamContext } from "./upstream.ts";
import { OutlineUpstream, REPLAY_LIMIT } from "./outline.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wait until `cond` holds (the moves are asynchronous; a loaded CI machine needs more than a fixed sleep). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
const TARGET: Target = { host: "example.com", port: 443 };
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (chunks: Uint8Array[]) => chunks.map((c) => new TextDecoder().decode(c)).join("");

const assignment = (node_id: string, password = "pw"): Assignment => ({
  node_id,
  host: `${node_id}.test`,
  port: 8388,
  method: "chacha20-ietf-poly1305",
  password,
  prefix: null,
});

/** A stream from a scripted node: records what it is sent; the test makes it answer (inbox.deliver), end or fail. */
class FakeStream implements Duplex {
  readonly inbox = new DuplexInbox();
  written: Uint8Array[] = [];
  writeClosed = false;
  closed: StreamError | undefined | null = null;
  start(h: DuplexHandlers) {
    this.inbox.start(h);
  }
  write(c: Uint8Array) {
    this.written.push(c);
    return true;
  }
  closeWrite() {
    this.writeClosed = true;
  }
  close(err?: StreamError) {
    this.fail(err);
  }
  fail(err?: StreamError) {
    if (this.closed !== null) return;
    this.closed = err;
    this.inbox.close(err);
  }
  pause() {}
  resume() {}
}

/** A node: each dial either fails with `refuse` or yields a FakeStream. */
class FakeNode {
  dials = 0;
  /** What a liveness probe finds; `probes` counts them. */
  alive = true;
  probes = 0;
  streams: FakeStream[] = [];
  refuse: string | null = null;
  dialer: Dialer = {
    dial: async () => {
      this.dials++;
      await sleep(1);
      if (this.refuse) throw new StreamError(this.refuse, `node: ${this.refuse}`);
      const s = new FakeStream();
      this.streams.push(s);
      return s;
    },
  };
}

function harness(nodes: Record<string, FakeNode>) {
  const reports: Array<{ node_id: string; error: string }> = [];
  const pool = new OutlineUpstream({
    dialTimeoutMs: 1000,
    backendTimeoutMs: 1000,
    reportFailure: (node_id, error) => reports.push({ node_id, error }),
    nodeDialer: (a) => nodes[a.node_id]!.dialer,
    probe: async (addr) => {
      const node = nodes[addr.host.replace(/\.test$/, "")]!;
      node.probes++;
      await sleep(5);
      return node.alive;
    },
    logger: memoryLogger("error"),
  });
  /** What the "backend" answers: the first node not excluded, in order, or none. */
  let order = Object.keys(nodes);
  const revalidations: Array<string[] | undefined> = [];
  const moves: string[] = [];
  const ctx: UpstreamContext = {
    session_id: "s",
    logger: memoryLogger("error"),
    async revalidate(opts = {}) {
      revalidations.push(opts.exclude_node_ids);
      await sleep(5);
      const id = order.find((n) => !(opts.exclude_node_ids ?? []).includes(n));
      const outcome: AuthOutcome = {
        ok: true,
        device: { id: "d", name: "d", max_sessions: null, data_quota_bytes: null, expires_at: null },
        assignment: id ? assignment(id) : null,
      };
      return outcome;
    },
    nodeChanged: (id) => moves.push(id),
  };
  return {
    pool,
    ctx,
    reports,
    revalidations,
    moves,
    session: (first: string | null) => pool.forSession(first ? assignment(first) : null, ctx).dialer,
    setOrder: (o: string[]) => (order = o),
  };
}

/** Start a dialed stream and collect what it delivers. */
function collect(d: Duplex) {
  const got = { data: [] as Uint8Array[], ended: false, closed: null as StreamError | undefined | null };
  d.start({ data: (c) => got.data.push(c), end: () => (got.ended = true), drain() {}, close: (e) => (got.closed = e) });
  return got;
}

/** Nodes a and b, a session on a, and one stream dialed on it. */
async function streamOnA() {
  const a = new FakeNode();
  const b = new FakeNode();
  const h = harness({ a, b });
  const dialer = h.session("a");
  const d = await dialer.dial(TARGET);
  return { a, b, h, dialer, d, got: collect(d) };
}

describe("outline upstream failover", () => {
  test("a refused node: reported once, one re-validation excluding it, the stream and later streams go to the next node", async () => {
    const a = new FakeNode();
    const b = new FakeNode();
    const h = harness({ a, b });
    const dialer = h.session("a");
    a.refuse = "upstream_refused";
    const first = await Promise.all([1, 2, 3, 4, 5].map(() => dialer.dial(TARGET)));
    assert.equal(first.length, 5);
    assert.equal(b.streams.length, 5, "every concurrent stream was retried on b");
    assert.deepEqual(h.revalidations, [["a"]], "concurrent failures share one re-validation");
    assert.equal(h.reports.length, 1);
    assert.equal(h.reports[0]!.node_id, "a");
    assert.match(h.reports[0]!.error, /^upstream_refused: /);
    assert.deepEqual(h.moves, ["b"]);
    const aDials = a.dials;
    await dialer.dial(TARGET);
    assert.equal(a.dials, aDials, "later streams go straight to b");
    assert.equal(b.streams.length, 6);
    assert.equal(h.revalidations.length, 1);
  });

  test("no other node: the original code, and no re-validation storm", async () => {
    const a = new FakeNode();
    const h = harness({ a });
    const dialer = h.session("a");
    a.refuse = "upstream_timeout";
    await assert.rejects(dialer.dial(TARGET), (e: unknown) => e instanceof StreamError && e.code === "upstream_timeout");
    await assert.rejects(dialer.dial(TARGET), (e: unknown) => e instanceof StreamError && e.code === "upstream_timeout");
    assert.equal(h.revalidations.length, 1, "a fruitless failover is not repeated at once");
    assert.equal(h.reports.length, 1, "one report per node per window");
  });

  test("target-side and client-side failures move nothing", async () => {
    const a = new FakeNode();
    const b = new FakeNode();
    const h = harness({ a, b });
    const dialer = h.session("a");
    for (
      const [code, want] of [
        ["bad_address", "bad_target"],
        ["aborted", "cancelled"],
      ]
    ) {
      a.refuse = code!;
      await assert.rejects(dialer.dial(TARGET), (e: unknown) => e instanceof StreamError && e.code === want);
    }
    assert.equal(h.revalidations.length, 0);
    assert.equal(h.reports.length, 0);
  });

  test("a session without a node asks the backend on its next stream: unavailable while there is none", async () => {
    const a = new FakeNode();
    const h = harness({ a });
    h.setOrder([]);
    const dialer = h.session(null);
    await assert.rejects(dialer.dial(TARGET), (e: unknown) => e instanceof StreamError && e.code === "unavailable");
    await assert.rejects(dialer.dial(TARGET), (e: unknown) => e instanceof StreamError && e.code === "unavailable");
    assert.equal(h.revalidations.length, 1, "rate-limited");
    h.setOrder(["a"]);
    await sleep(1100);
    await dialer.dial(TARGET);
    assert.equal(a.streams.length, 1);
    assert.deepEqual(h.moves, ["a"]);
  });

  test("a silent node (first-answer timeout): the stream moves to the next node with the bytes already sent", async () => {
    const { a, b, h, d, got } = await streamOnA();
    d.write(bytes("GET / HTTP/1.1\r\n"));
    d.write(bytes("\r\n"));
    const silent = a.streams[0]!;
    silent.fail(new StreamError("upstream_timeout", "no answer"));
    // While it moves, writes are kept for the replay.
    assert.equal(d.write(bytes("more")), true);
    await until(
      () => b.streams.length > 0 && text(b.streams[0]!.written).endsWith("more"),
      "the stream on b with the replayed bytes",
    );
    assert.equal(got.closed, null, "the caller saw no failure");
    const moved = b.streams[0]!;
    assert.equal(text(moved.written), "GET / HTTP/1.1\r\n\r\nmore");
    moved.inbox.deliver(bytes("HTTP/1.1 200 OK"));
    assert.equal(text(got.data), "HTTP/1.1 200 OK");
    assert.equal(h.reports[0]!.node_id, "a");
    assert.match(h.reports[0]!.error, /^upstream_timeout: /);
    // Once: b's silence would now end the stream (it answered here, so its key is trusted anyway).
    d.close();
    assert.equal(moved.closed, undefined);
  });

  test("a stream moves once only, and not past REPLAY_LIMIT; the silent node is still reported", async () => {
    const a = new FakeNode();
    const b = new FakeNode();
    const c = new FakeNode();
    const h = harness({ a, b, c });
    const dialer = h.session("a");
    // Too much sent before any answer: no replay, the stream ends with the timeout.
    const big = await dialer.dial(TARGET);
    const got = collect(big);
    big.write(new Uint8Array(REPLAY_LIMIT + 1));
    a.streams[0]!.fail(new StreamError("upstream_timeout", "no answer"));
    await until(() => got.closed != null && h.moves.length > 0, "the stream's end and the session's move");
    assert.equal(got.closed?.code, "upstream_timeout");
    assert.deepEqual(h.moves, ["b"], "the session moved anyway");
    // On b: a stream that moves to c, then c is silent too → the stream ends.
    const d = await dialer.dial(TARGET);
    const got2 = collect(d);
    d.write(bytes("x"));
    b.streams[0]!.fail(new StreamError("upstream_timeout", "no answer"));
    await until(() => c.streams.length > 0, "the move to c");
    assert.equal(c.streams.length, 1);
    c.streams[0]!.fail(new StreamError("upstream_timeout", "no answer"));
    await until(() => got2.closed != null, "the stream's end on c");
    assert.equal(got2.closed?.code, "upstream_timeout");
    assert.deepEqual(
      h.reports.map((r) => r.node_id),
      ["a", "b", "c"],
    );
  });

  test("an answered stream never moves; its key then skips the replay", async () => {
    const { a, b, h, d, got } = await streamOnA();
    d.write(bytes("hi"));
    a.streams[0]!.inbox.deliver(bytes("answer"));
    a.streams[0]!.fail(new StreamError("upstream_reset", "reset"));
    assert.equal(got.closed?.code, "upstream_reset");
    assert.equal(h.reports.length, 0);
    assert.equal(b.dials, 0);
  });

  test("an end from a live node is an ordinary end, after one probe shared by the streams that ended together", async () => {
    const a = new FakeNode();
    const b = new FakeNode();
    const h = harness({ a, b });
    const dialer = h.session("a");
    const streams = await Promise.all([1, 2, 3].map(() => dialer.dial(TARGET)));
    const got = streams.map(collect);
    for (const s of a.streams) {
      s.inbox.deliver(bytes("answer"));
      s.inbox.end();
    }
    assert.equal(got[0]!.ended, false, "the end waits for the probe");
    await until(() => got.every((g) => g.ended), "the ends");
    assert.equal(a.probes, 1, "one probe for the three ends");
    for (const s of a.streams) s.fail(); // the socket's close after the end
    assert.ok(got.every((g) => g.closed === undefined), "closed without an error");
    assert.equal(h.reports.length, 0);
  });

  test("an end from a node that no longer accepts connections: upstream_reset, the node is reported, the next stream goes to the next node", async () => {
    const { a, b, h, dialer, got } = await streamOnA();
    a.streams[0]!.inbox.deliver(bytes("part of a download"));
    a.alive = false; // the node died: its FIN looks like the target's
    a.streams[0]!.inbox.end();
    a.streams[0]!.fail(); // and its socket closes cleanly at once
    await until(() => got.closed != null, "the stream's close");
    assert.equal(got.ended, false, "no end: the stream failed");
    assert.equal(got.closed?.code, "upstream_reset");
    assert.equal(a.streams[0]!.closed, undefined, "the node's stream was already closed");
    assert.deepEqual(
      h.reports.map((r) => r.node_id),
      ["a"],
    );
    assert.match(h.reports[0]!.error, /^upstream_reset: /);
    const aDials = a.dials;
    await dialer.dial(TARGET);
    assert.equal(a.dials, aDials, "the next stream did not try a");
    assert.equal(b.streams.length, 1);
    assert.deepEqual(h.revalidations, [["a"]]);
  });

  test("a node that failed on one session is skipped by the others before they dial it", async () => {
    const a = new FakeNode();
    const b = new FakeNode();
    const h = harness({ a, b });
    const one = h.session("a");
    const two = h.session("a");
    a.refuse = "upstream_refused";
    await one.dial(TARGET);
    const dialsOnA = a.dials;
    await two.dial(TARGET);
    assert.equal(a.dials, dialsOnA, "the second session did not try a");
    assert.equal(b.streams.length, 2);
    assert.equal(h.reports.length, 1);
  });

  test("a node whose method cannot be used is a node failure (upstream_protocol)", async () => {
    const reports: string[] = [];
    const pool = new OutlineUpstream({ dialTimeoutMs: 1000, backendTimeoutMs: 1000, reportFailure: (id) => reports.push(id) });
    const ctx: UpstreamContext = {
      session_id: "s",
      logger: memoryLogger("error"),
      revalidate: async () => ({ ok: false, code: "unavailable", message: "down" }),
      nodeChanged() {},
    };
    const dialer = pool.forSession({ ...assignment("x"), method: "rc4-md5" }, ctx).dialer;
    await assert.rejects(
      dialer.dial(TARGET),
      (e: unknown) => e instanceof StreamError && e.code === "upstream_protocol" && !e.message.includes("pw"),
    );
    assert.deepEqual(reports, ["x"]);
  });
});
