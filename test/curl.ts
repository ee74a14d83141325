// The real curl for the end-to-end tests, one way: the body written to a temporary file and
// hashed, with the status and the Server and X-Sha256 headers (the test targets send the
// body's sha256 in X-Sha256, so a body is checked against what was sent).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CurlResult {
  /** curl's exit code: 0 when the transfer worked. */
  code: number | null;
  /** "200"; "000" when no response came. */
  status: string;
  /** The Server header. */
  server: string;
  /** The X-Sha256 header: the sha256 the target says it sent. */
  header: string;
  body: Uint8Array;
  /** sha256 of the body curl wrote. */
  sha: string;
  size: number;
  stderr: string;
}

let seq = 0;

/** `curl -sS --max-time maxTimeS …args`. */
export async function curl(args: string[], maxTimeS = 30): Promise<CurlResult> {
  const out = join(tmpdir(), `httvps-curl-${process.pid}-${++seq}`);
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn("curl", [
      "-sS",
      "--max-time",
      String(maxTimeS),
      "-o",
      out,
      "-w",
      "%{http_code} %header{server} %header{x-sha256}",
      ...args,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  const body: Uint8Array = await readFile(out).catch(() => new Uint8Array(0));
  await rm(out, { force: true });
  const [status = "", server = "", header = ""] = r.stdout.split(" ");
  return {
    code: r.code,
    status,
    server,
    header,
    body,
    sha: createHash("sha256").update(body).digest("hex"),
    size: body.length,
    stderr: r.stderr,
  };
}
