// What the apps' end-to-end tests fetch through a peer's SOCKS5 (ss-local, v2ray) and how they
// check it: curl, bodies from a local HTTP target compared by sha256.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { runtime } from "../../runtime/index.ts";
import type { HttpTarget } from "../../shadowsocks/ss-server.testing.ts";
import { curl } from "../curl.ts";
import type { PeerProcess } from "./stack.ts";

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
/** The bytes the HTTP targets serve (GET /bytes/N is their first N). */
export const POOL = new Uint8Array(randomBytes(BIG));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** curl through the peer's SOCKS5 (names resolved by the peer), `n` bytes from the target, checked. */
export async function fetchThrough(peer: PeerProcess, target: HttpTarget, n: number, label: string): Promise<void> {
  const r = await curl(["--socks5-hostname", `127.0.0.1:${peer.socks}`, `http://127.0.0.1:${target.port}/bytes/${n}`], 120);
  assert.equal(r.code, 0, `${label}: curl ${n} B: ${r.stderr}\n${peer.output().slice(-2000)}`);
  assert.equal(r.status, "200", label);
  assert.equal(r.size, n, `${label}: ${n} B`);
  assert.equal(r.sha, sha(POOL.subarray(0, n)), `${label}: sha256 of ${n} B`);
}

/** 0 B, 1 B, 16 KiB, then 20 in parallel, and 64 MiB when `big`, all sha256-equal. */
export async function fetchSet(peer: PeerProcess, target: HttpTarget, label: string, big: boolean): Promise<void> {
  for (const n of [0, 1, 16 * 1024]) await fetchThrough(peer, target, n, label);
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => fetchThrough(peer, target, [1, 1000, 16 * 1024, 100_000][i % 4]!, label)),
  );
  if (!big) return;
  const t0 = performance.now();
  await fetchThrough(peer, target, BIG, label);
  const s = (performance.now() - t0) / 1000;
  console.log(`[${runtime}] ${label}: 64 MiB in ${s.toFixed(2)} s (${((BIG * 8) / s / 1e6).toFixed(0)} Mbit/s)`);
}
