// Shadowsocks AEAD throughput per provider × cipher on the current runtime:
//   node --import tsx bench/ss-crypto.ts | bun bench/ss-crypto.ts | deno run -A bench/ss-crypto.ts
// "seal"/"open" run the real stream framing (AeadEncryptor/AeadDecryptor) at three write
// sizes: 1 KiB (one chunk: a 2-byte length block and a 1 KiB payload block, where a per-call
// cost such as FFI shows), 16 KiB (one full 16383-byte chunk plus a 1-byte one) and 64 KiB
// (four full chunks and a small one; two AEAD calls per chunk). "webcrypto" is AES-GCM through
// crypto.subtle, one awaited promise per 16 KiB block, for comparison only: the stream
// path is synchronous by design. MB = 10^6 bytes; each cell is the best of BENCH_ROUNDS (3)
// windows of BENCH_SECONDS (0.2) each.
import { AeadDecryptor, AeadEncryptor } from "../shadowsocks/aead-stream.ts";
import type { AeadProvider, CipherSpec } from "../shadowsocks/aead.ts";
import { cipherSpec, loadWasmProviders, METHODS, providerFor, PROVIDERS, usable } from "../shadowsocks/ciphers.ts";

// Measure libsodium (WebAssembly) everywhere, not only where it is picked.
await loadWasmProviders();

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : `node ${process.version}`;
const seconds = Number(process.env.BENCH_SECONDS ?? "0.2");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? "3");
const WRITES = [1024, 16 * 1024, 64 * 1024];

/** The best of ROUNDS windows of `seconds` each: on a loaded machine the best is the least disturbed. */
function measure(fn: () => number): number {
  // Warm up the JIT and any lazily loaded native code before timing.
  const warmEnd = performance.now() + 100;
  while (performance.now() < warmEnd) fn();
  let best = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let bytes = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < seconds * 1000) {
      bytes += fn();
      t = performance.now();
    }
    best = Math.max(best, bytes / 1e6 / ((t - t0) / 1000));
  }
  return best;
}

function bench(spec: CipherSpec, provider: AeadProvider, write: number): { seal: number; open: number } {
  const key = crypto.getRandomValues(new Uint8Array(spec.keyLen));
  const plain = crypto.getRandomValues(new Uint8Array(write));
  const enc = new AeadEncryptor(spec, key, { provider });
  const seal = measure(() => (enc.seal(plain), write));
  // Open a long pre-sealed stream, restarting it when used up.
  const sealer = new AeadEncryptor(spec, key, { provider });
  const wire = [sealer.seal(plain)];
  for (let i = 0; i < 63; i++) wire.push(sealer.seal(plain));
  let dec = new AeadDecryptor(spec, key, provider);
  let i = 0;
  const open = measure(() => {
    if (i === wire.length) {
      dec = new AeadDecryptor(spec, key, provider);
      i = 0;
    }
    const r = dec.push(wire[i++]!);
    if (!Array.isArray(r)) throw r;
    return write;
  });
  return { seal, open };
}

async function benchWebCrypto(spec: CipherSpec): Promise<number | undefined> {
  if (spec.family !== "gcm") return undefined;
  try {
    const key = await crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(spec.keyLen)), "AES-GCM", false, [
      "encrypt",
    ]);
    const block = crypto.getRandomValues(new Uint8Array(16 * 1024));
    const iv = new Uint8Array(12);
    const once = () => crypto.subtle.encrypt({ name: "AES-GCM", iv, tagLength: 128 }, key, block);
    await once();
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await once();
      bytes += block.length;
    }
    return bytes / 1e6 / ((performance.now() - t0) / 1000);
  } catch {
    return undefined;
  }
}

const fmt = (x: number | undefined) => (x === undefined ? "n/a" : x.toFixed(0));
const kib = WRITES.map((w) => `${w / 1024} KiB`);
console.log(`Shadowsocks AEAD throughput on ${runtime} (MB/s seal / open per write size)`);
console.log(`| cipher | provider | ${kib.join(" | ")} | picked |`);
console.log(`|---|---|${WRITES.map(() => "---:|").join("")}---|`);
for (const method of METHODS) {
  const spec = cipherSpec(method);
  const picked = providerFor(spec).name;
  for (const p of PROVIDERS) {
    if (!usable(p, spec)) {
      console.log(`| ${method} | ${p.name} | ${WRITES.map(() => "n/a").join(" | ")} | |`);
      continue;
    }
    const cells = WRITES.map((w) => bench(spec, p, w)).map((r) => `${fmt(r.seal)} / ${fmt(r.open)}`);
    console.log(`| ${method} | ${p.name} | ${cells.join(" | ")} | ${p.name === picked ? "yes" : ""} |`);
  }
  const wc = await benchWebCrypto(spec);
  if (wc !== undefined) console.log(`| ${method} | webcrypto (async, 16 KiB seal) | | ${fmt(wc)} | | |`);
}
