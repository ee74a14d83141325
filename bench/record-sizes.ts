// What a censor sees of a new stream: the sizes of the TLS records between `httvps connect` and
// the gateway while curl runs its own TLS handshake and one HTTPS request through the tunnel
// (TLS in TLS) and two more GETs on that connection, captured on loopback with Debian's tshark; once with `--no-padding` and twice
// with padding (docs/03 §12), so the table shows what padding changes and that it is random.
// A measurement, not a test; needs tshark and the right to capture on `lo` (root).
//   node --import tsx bench/record-sizes.ts [RECORDS=16]   (or bun …, deno run -A …)
// Prints a markdown table: for each of the first RECORDS application-data records after curl
// started, its direction and its length (TLS ciphertext, tag included) in each run.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { runtime } from "../runtime/index.ts";
import { curl } from "../test/curl.ts";
import { startStack } from "../test/e2e/stack.ts";

const records = Number(process.argv[2] ?? 16);

/** Starts dumpcap on lo for tcp port `port`, resolves once it captures. */
function capture(port: number, file: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn("dumpcap", ["-q", "-i", "lo", "-f", `tcp port ${port}`, "-w", file], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr!.on("data", (d) => {
      err += d;
      if (/Capturing on/.test(err)) resolve(p);
    });
    p.on("exit", (code) => reject(new Error(`dumpcap exited ${code}: ${err}`)));
    setTimeout(() => resolve(p), 3000); // some builds print nothing with -q
  });
}

interface Rec {
  t: number;
  dir: "C→G" | "G→C";
  len: number;
}

/** The TLS records in `file` after epoch time `since`. */
function readRecords(file: string, port: number, since: number): Rec[] {
  const r = spawnSync("tshark", [
    "-r",
    file,
    "-d",
    `tcp.port==${port},tls`,
    "-Y",
    "tls.record",
    "-T",
    "fields",
    "-e",
    "frame.time_epoch",
    "-e",
    "tcp.srcport",
    "-e",
    "tls.record.content_type",
    "-e",
    "tls.record.length",
  ], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tshark: ${r.stderr}`);
  const out: Rec[] = [];
  // The session's TLS handshake is long over by `since`: every record after it is application
  // data (tshark names the type of only some of them, so the lengths are taken as they come).
  for (const line of r.stdout.trim().split("\n")) {
    const [t, src, , lens] = line.split("\t");
    if (Number(t) < since || !lens) continue;
    for (const l of lens.split(",")) out.push({ t: Number(t), dir: Number(src) === port ? "G→C" : "C→G", len: Number(l) });
  }
  return out;
}

const stack = await startStack({
  backend: "app",
  upstream: "direct",
  logLevel: "error",
  env: { GATEWAY_DIRECT_ALLOW: "127.0.0.0/8" },
});
// The site inside the tunnel: HTTPS with the stack's certificate, one small page.
const site = https.createServer({ cert: stack.cert.certPem, key: stack.cert.keyPem }, (_req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>ok</title><p>" + "x".repeat(2000));
});
await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
const sitePort = (site.address() as AddressInfo).port;

const runs: Array<{ name: string; recs: Rec[] }> = [];
try {
  const gw = await stack.gateway();
  const device = await stack.backend.device();
  const key = stack.accessKey(device, gw.port);
  for (const [name, flags] of [["no padding", ["--no-padding"]], ["padding (run 1)", []], ["padding (run 2)", []]] as const) {
    const file = join(stack.dir, `capture-${runs.length}.pcapng`);
    const dump = await capture(gw.port, file);
    const client = await stack.client(key, { http: false, flags: [...flags], logLevel: "warn" });
    await new Promise((r) => setTimeout(r, 500)); // the session is up and quiet
    const since = Date.now() / 1000;
    // Three GETs on one connection: one stream, its handshake and then ordinary requests.
    const url = `https://127.0.0.1:${sitePort}/`;
    const r = await curl(["-k", "--http1.1", "--socks5-hostname", `127.0.0.1:${client.socks}`, url, url, url]);
    if (r.status !== "200") throw new Error(`curl through the tunnel: ${r.status} ${r.stderr}`);
    await new Promise((r) => setTimeout(r, 500));
    dump.kill("SIGINT");
    await new Promise((r) => dump.once("exit", r));
    await client.stop();
    runs.push({ name, recs: readRecords(file, gw.port, since).slice(0, records) });
  }
} finally {
  site.close();
  await stack.close();
}

console.log(
  `TLS application-data records between client and gateway (bytes, ciphertext with tag), the first ${records} after curl started ` +
    `three HTTPS GETs on one connection through the tunnel; ${runtime}, loopback\n`,
);
console.log(`| # | ${runs.map((r) => r.name).join(" | ")} |`);
console.log(`|---|${runs.map(() => "---").join("|")}|`);
for (let i = 0; i < records; i++) {
  console.log(`| ${i + 1} | ${runs.map((r) => (r.recs[i] ? `${r.recs[i]!.dir} ${r.recs[i]!.len}` : "")).join(" | ")} |`);
}
process.exit(0);
