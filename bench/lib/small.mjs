// The "many small requests" rows (small/<chain>, issue 17 item 5): what a browser does when it
// loads a page — 200 GETs of 1–60 KB, 24 at a time, each on a new connection through the
// tunnel's SOCKS5 port. The figure is the wall time of the whole batch; every body's size is
// checked. A multiplexed session pays no handshake per connection; a tunnel that opens a TLS
// connection per SOCKS connection (ss + v2ray-plugin mux=0, VLESS) pays one each time.
//
// The load generator is one curl with --parallel: one process, one event loop, 24 transfers in
// flight, ~6 MB in all — a few ms of its CPU, not the bottleneck. "Connection: close" makes the
// target end every response's connection, so curl cannot reuse it: each request is a new SOCKS5
// connection (and a new stream or connection in the tunnel), the worst case of a browser's page
// load and the one the issue names. The wall time includes curl's start (the same few ms for
// every row, which pulls ratios toward 1, never away).
import { curl } from "./curl.mjs";

export const SMALL = { requests: 200, parallel: 24, minBytes: 1_000, maxBytes: 60_000, seed: 17 };
/** The peers of the small-request rows (row ids of bench/lib/rows.mjs): the fastest of them in a run is what HTTVPS is held against. */
export const SMALL_PEERS = ["plugin-mux0", "plugin-mux1", "vless"];

/** The fixed list of response sizes, spread 1–60 KB (KB = 10^3 B) by a seeded mulberry32: the same on every run. */
export function smallSizes({ requests, minBytes, maxBytes, seed } = SMALL) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return Array.from({ length: requests }, () => minBytes + Math.floor(next() * (maxBytes - minBytes + 1)));
}

class SmallBatchError extends Error {
  code = "SMALL_BATCH_FAILED";
}

/**
 * One batch through the SOCKS5 port (0: none, straight to the target): { wallMs, requests, bytes }.
 * Throws unless every response was a 200 with exactly the bytes asked for.
 */
export async function smallBatch(socksPort, targetPort, sizes = smallSizes(), parallel = SMALL.parallel, maxTimeS = 60) {
  const args = [
    ...(socksPort ? ["--socks5-hostname", `127.0.0.1:${socksPort}`] : []),
    "--parallel",
    "--parallel-max",
    String(parallel),
    "-H",
    "Connection: close",
    "-w",
    "%{http_code} %{size_download} %{url_effective}\\n",
  ];
  for (const n of sizes) args.push("-o", "/dev/null", `http://127.0.0.1:${targetPort}/bytes/${n}`);
  const t0 = performance.now();
  const r = await curl(args, maxTimeS);
  const wallMs = performance.now() - t0;
  // One line per transfer, in the order they finished: each must match the size in its URL.
  const lines = r.stdout.trim().split("\n").filter(Boolean);
  const bad = lines.filter((l) => {
    const [code, size, url] = l.split(" ");
    return code !== "200" || Number(size) !== Number(/\/bytes\/(\d+)$/.exec(url ?? "")?.[1]);
  });
  if (r.code !== 0 || lines.length !== sizes.length || bad.length) {
    throw new SmallBatchError(
      `small batch: curl exit ${r.code}, ${lines.length} of ${sizes.length} transfers reported, ${bad.length} wrong (${
        bad[0] ?? "–"
      }): ${r.stderr.trim().slice(0, 300)}`,
    );
  }
  return { wallMs, requests: sizes.length, bytes: sizes.reduce((s, n) => s + n, 0) };
}
