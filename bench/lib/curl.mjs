// The measurements, all made by the real curl through a SOCKS5 proxy (or none, for raw
// loopback): download, upload, N parallel downloads, time to first byte of a new connection.
// MB = 10^6 bytes, as in docs/06-performance.md.
import { spawn } from "node:child_process";

/** Run curl to completion; stdout is what -w printed. Bounded by --max-time. */
export function curl(args, maxTimeS) {
  return new Promise((resolve) => {
    const child = spawn("curl", ["-sS", "--max-time", String(maxTimeS), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => (stderr += e.message));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const proxyArgs = (socksPort) => (socksPort ? ["--socks5-hostname", `127.0.0.1:${socksPort}`] : []);

class CurlError extends Error {}

/** One download of `bytes`; throws unless all of them arrived. */
export async function download(socksPort, targetPort, bytes, maxTimeS = 120) {
  const r = await curl([
    ...proxyArgs(socksPort),
    "-o",
    "/dev/null",
    "-w",
    "%{size_download} %{speed_download} %{time_starttransfer} %{time_total}",
    `http://127.0.0.1:${targetPort}/bytes/${bytes}`,
  ], maxTimeS);
  const [size, speed, ttfb, total] = r.stdout.trim().split(" ").map(Number);
  if (r.code !== 0 || size !== bytes) {
    throw new CurlError(`download of ${bytes} B: curl exit ${r.code}, got ${size} B: ${r.stderr.trim().slice(0, 300)}`);
  }
  return { bytes: size, mbps: speed / 1e6, ttfbS: ttfb, totalS: total };
}

/** One upload of the file (`bytes` long); the target answers the count it received. */
export async function upload(socksPort, targetPort, file, bytes, maxTimeS = 120) {
  // -T streams the file (no copy in memory); "Expect:" skips the 100-continue round trip.
  const r = await curl([
    ...proxyArgs(socksPort),
    "-T",
    file,
    "-X",
    "POST",
    "-H",
    "Expect:",
    "-w",
    " %{size_upload} %{speed_upload} %{time_total}",
    `http://127.0.0.1:${targetPort}/upload`,
  ], maxTimeS);
  // The target's answer (its count), then curl's three figures; without an answer, only those.
  const parts = r.stdout.trim().split(/\s+/).map(Number);
  const [size, speed, total] = parts.slice(-3);
  const received = parts.length === 4 ? parts[0] : undefined;
  if (r.code !== 0 || received !== bytes || size !== bytes) {
    throw new CurlError(
      `upload of ${bytes} B: curl exit ${r.code}, sent ${size}, the target answered ${received ?? "nothing"}: ${
        r.stderr.trim().slice(0, 300)
      }`,
    );
  }
  return { bytes: size, mbps: speed / 1e6, totalS: total };
}

/** `n` downloads of `bytes` each at once; aggregate = all bytes / wall time of the whole batch. */
export async function parallel(socksPort, targetPort, n, bytes, maxTimeS = 120) {
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, () => download(socksPort, targetPort, bytes, maxTimeS)));
  const wallS = (performance.now() - t0) / 1000;
  const total = all.reduce((s, r) => s + r.bytes, 0);
  return { streams: n, bytes: total, wallS, mbps: total / wallS / 1e6, perStream: all.map((r) => r.mbps) };
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/** `n` sequential `GET /bytes/1`, each a new curl and a new SOCKS connection: curl's time_starttransfer. */
export async function ttfb(socksPort, targetPort, n) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const r = await download(socksPort, targetPort, 1, 20);
    samples.push(r.ttfbS * 1000);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { n, medianMs: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9), samplesMs: samples };
}
