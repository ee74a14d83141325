// Fuzzing at stress scale (docs/07-security.md "Fuzzing"). Run with `npm run test:stress`
// (or `HTTVPS_STRESS=1 node test/run.mjs all ./test/stress/fuzz.stress.ts`).
// 1. ≥ 1,000,000 random and mutated frames, JSON and binary, through the codec: never a throw,
//    only the four decoder codes. Seeded, so a failure names an input that reproduces.
// 2. ≥ 10,000 mutated frames through a live gateway session while a second session on the
//    same gateway echoes checksummed data the whole time: the second is unaffected; the first
//    gets the decoder's codes (and only codes the spec names), survives single bad frames
//    interleaved with good ones, and is closed with too_many_errors after 100 in a row.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { DevCertificate } from "../../gateway/certs.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { decodeBinary, type DecodeResult, decodeText, encodeBinary, encodeText } from "../../protocol/codec.ts";
import { wrapPadded } from "../../protocol/padding.ts";
import { isErrorCode } from "../../protocol/errors.ts";
import type { Frame } from "../../protocol/frames.ts";
import { runtime } from "../../runtime/index.ts";
import { type Stack, startStack } from "../e2e/stack.ts";
import { TunnelClient } from "../e2e/tunnel-client.ts";
import { mutateBytes, mutateText, prng, randomValue } from "../../protocol/fuzz.testing.ts";

const DECODE_CODES = new Set(["bad_frame", "unknown_type", "bad_data", "frame_too_large"]);
const CODEC_FRAMES = Number(process.env.HTTVPS_FUZZ_FRAMES ?? 1_000_000);
const LIVE_FRAMES = Number(process.env.HTTVPS_FUZZ_LIVE_FRAMES ?? 10_000);

const enc = new TextEncoder();
const seeds: Frame[] = [
  { type: "hello", device_id: "dev-1", token: "tok", client_version: "1.0", features: ["flow", "binary"], window: 262144 },
  { type: "stream_open", stream_id: "f1" },
  {
    type: "stream_open",
    stream_id: "f2",
    target: { host: "example.com", port: 443 },
    data: enc.encode("GET / HTTP/1.1\r\n\r\n"),
  },
  { type: "stream_data", stream_id: "f1", data: enc.encode("hello fuzz") },
  { type: "stream_data", stream_id: "f1", data: new Uint8Array(300).map((_, i) => i) },
  { type: "stream_end", stream_id: "f1" },
  { type: "stream_close", stream_id: "f1", code: "cancelled", message: "bye" },
  { type: "window_update", stream_id: "f1", increment: 65536 },
  { type: "ping", id: "1" },
  { type: "pong", id: "1" },
  { type: "error", code: "bad_frame", message: "x", stream_id: "f1" },
  { type: "goaway", code: "shutdown", drain_ms: 10 },
];
const texts = seeds.map((f) => encodeText(f));
// Each seed plain and inside the padding wrapper (docs/03 §12), with short paddings so the
// mutations reach the frame behind them too.
const bins = seeds.flatMap((f, i) => [encodeBinary(f), wrapPadded(encodeBinary(f), i % 7)]);

/** One fuzz input; `kind` names the generator, for the tally in the doc. */
function fuzzInput(rnd: () => number): { kind: string; input: string | Uint8Array } {
  const pick = rnd() % 10;
  if (pick < 3) return { kind: "mutated JSON", input: mutateText(texts[rnd() % texts.length]!, rnd) };
  if (pick < 6) return { kind: "mutated binary", input: mutateBytes(bins[rnd() % bins.length]!, rnd) };
  if (pick === 6) {
    const o = JSON.parse(texts[rnd() % texts.length]!) as Record<string, unknown>;
    const keys = Object.keys(o);
    o[keys[rnd() % keys.length]!] = randomValue(rnd, 1);
    return { kind: "field swapped", input: JSON.stringify(o) };
  }
  if (pick < 9) return { kind: "random JSON", input: JSON.stringify(randomValue(rnd, 0)) ?? "" };
  return { kind: "random bytes", input: new Uint8Array(Array.from({ length: rnd() % 24 }, () => rnd() & 255)) };
}

const decode = (
  input: string | Uint8Array,
): DecodeResult => (typeof input === "string" ? decodeText(input) : decodeBinary(input));

describe(`fuzzing on ${runtime}`, () => {
  test(`${CODEC_FRAMES} random and mutated frames through the codec: no throw, only decoder codes`, () => {
    const rnd = prng(0xf022);
    const tally: Record<string, number> = {};
    const t0 = performance.now();
    // A generous bound that only a pathological slowdown would reach.
    const deadline = Date.now() + 600_000;
    let i = 0;
    for (; i < CODEC_FRAMES && Date.now() < deadline; i++) {
      const { kind, input } = fuzzInput(rnd);
      let r: DecodeResult;
      try {
        r = decode(input);
      } catch (err) {
        assert.fail(`decode threw on input #${i} (${kind}) ${JSON.stringify(String(input).slice(0, 120))}: ${err}`);
      }
      const key = r.ok ? `ok ${r.frame.type}` : r.error.code;
      tally[key] = (tally[key] ?? 0) + 1;
      if (!r.ok) assert.ok(DECODE_CODES.has(r.error.code), `#${i}: code ${r.error.code}`);
      else if (i % 16 === 0) {
        // Compared as encodings: JSON's -0 decodes to -0 and encodes as 0, the same frame on the wire.
        const again = decodeBinary(encodeBinary(r.frame));
        assert.ok(again.ok && encodeText(again.frame) === encodeText(r.frame), `#${i} re-encodes`);
      }
    }
    assert.equal(i, CODEC_FRAMES, "all frames within the time bound");
    const ms = performance.now() - t0;
    console.log(`[${runtime}] codec fuzz: ${i} frames in ${(ms / 1000).toFixed(1)} s; ${JSON.stringify(tally)}`);
  });

  describe("through a live gateway", () => {
    let stack: Stack<"app">;
    let cert: DevCertificate;
    let gw: RunningGateway;

    before(async () => {
      stack = await startStack();
      cert = stack.cert;
      gw = await stack.gateway();
    });
    after(() => stack?.close());

    const device = () => stack.backend.device({ name: "fuzz" });

    test(`${LIVE_FRAMES} mutated frames on one session; a neighbour session echoes checksummed data unharmed`, async () => {
      const fuzzer = await TunnelClient.session(gw.port, cert.certPem, await device());
      const echoer = await TunnelClient.session(gw.port, cert.certPem, await device());
      // The neighbour: streams of random sizes echoed and sha256-compared, until the fuzzing is done.
      let fuzzing = true;
      const echoStats = { streams: 0, bytes: 0, bad: 0 };
      const rndE = prng(0xec40);
      const echoLoop = (async () => {
        while (fuzzing) {
          const n = 1 + (rndE() % 300_000);
          const data = new Uint8Array(n).map(() => rndE() & 255);
          const id = echoer.newId();
          const h = createHash("sha256");
          const rx = echoer.open(id, undefined, undefined, (c) => h.update(c));
          await echoer.write(id, data);
          echoer.send({ type: "stream_end", stream_id: id });
          await echoer.until(() => rx.close !== null, `echo ${id}`, 60_000);
          if (
            rx.received !== n || h.digest("hex") !== createHash("sha256").update(data).digest("hex") ||
            rx.close!.code !== undefined
          ) echoStats.bad++;
          echoStats.streams++;
          echoStats.bytes += n;
        }
      })();

      let summary = "";
      try {
        const rnd = prng(0x11fe);
        const expected: Record<string, number> = {};
        let sent = 0;
        let pingSeq = 0;
        const pongs = () => fuzzer.frames.filter((f) => f.type === "pong").length;
        while (sent < LIVE_FRAMES) {
          // A run of 1-20 fuzz frames (never 100 in a row), then a good ping that must be answered.
          for (let k = 1 + (rnd() % 20); k > 0 && sent < LIVE_FRAMES; k--) {
            const { input } = fuzzInput(rnd);
            // The fuzzer is not allowed to pretend to be hello-less: it has said hello already.
            if (typeof input === "string" && input.length === 0) continue;
            const r = decode(input);
            if (!r.ok) expected[r.error.code] = (expected[r.error.code] ?? 0) + 1;
            fuzzer.socket.send(input);
            sent++;
          }
          const id = `p${++pingSeq}`;
          fuzzer.send({ type: "ping", id });
          await fuzzer.until(
            () => fuzzer.closed !== null || fuzzer.frames.some((f) => f.type === "pong" && f.id === id),
            `pong ${id}`,
            30_000,
          );
          assert.equal(fuzzer.closed, null, `the fuzzed session closed after ${sent} frames: ${JSON.stringify(fuzzer.closed)}`);
        }
        const errors = fuzzer.frames.filter((f): f is Extract<Frame, { type: "error" }> => f.type === "error");
        const got: Record<string, number> = {};
        for (const e of errors) got[e.code] = (got[e.code] ?? 0) + 1;
        for (const e of errors) assert.ok(isErrorCode(e.code), `a code the spec names: ${e.code}`);
        for (const [code, n] of Object.entries(expected)) {
          assert.ok((got[code] ?? 0) >= n, `${code}: ${got[code] ?? 0} answered, ${n} sent`);
        }
        // Fuzzed frames include valid pings, so there are more pongs than our own pings.
        assert.ok(pongs() >= pingSeq);

        // Now 100 bad frames in a row: too_many_errors and close 1008.
        for (let k = 0; k < 100; k++) fuzzer.socket.send("{not json");
        await fuzzer.until(() => fuzzer.closed !== null, "too_many_errors close", 30_000);
        assert.deepEqual(fuzzer.closed, { code: 1008, reason: "too_many_errors" });
        assert.ok(fuzzer.frames.some((f) => f.type === "error" && f.code === "too_many_errors"));
        summary = `${sent} fuzz frames + ${pingSeq} pings, ${errors.length} error frames ${JSON.stringify(got)}`;
      } finally {
        fuzzing = false;
        await echoLoop.catch(() => {});
      }
      await echoLoop;
      assert.equal(echoStats.bad, 0, "every neighbour echo intact");
      assert.ok(echoStats.streams >= 1);
      assert.equal(echoer.closed, null, "the neighbour is still open");
      await echoer.shut();
      console.log(
        `[${runtime}] live fuzz: ${summary}; ` +
          `neighbour echoed ${echoStats.streams} streams, ${echoStats.bytes} bytes, 0 corrupted; then 100 in a row → 1008 too_many_errors`,
      );
    });
  });
});
