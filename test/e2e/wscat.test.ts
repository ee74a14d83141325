// The specification's manual check, automated with the real `wscat` CLI:
//   npx wscat --no-check -c wss://localhost:8443/ws
//   {"type":"hello","device_id":"<device>","token":"<token>","client_version":"1.0"}
//   {"type":"stream_open","stream_id":"s1"}
//   {"type":"stream_data","stream_id":"s1","data":"aGVsbG8="}
// → auth_result ok, then the echo stream_data with the same data.
// wscat is a Node program, so it runs under `node` whichever runtime runs this test.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { until } from "../../client/testing.ts";
import type { RunningGateway } from "../../gateway/gateway.ts";
import { runtime } from "../../runtime/index.ts";
import { repoRoot } from "../cli.ts";
import { type Device, type Stack, startStack } from "./stack.ts";

const wscatBin = join(repoRoot, "node_modules", "wscat", "bin", "wscat");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack<"app">;
let gw: RunningGateway;
let device: Device;

before(async () => {
  stack = await startStack({ upstream: "fake" });
  device = await stack.backend.device({ name: "wscat" });
  gw = await stack.gateway();
});

after(() => stack?.close());

/** Lines wscat printed (without a TTY it prints each incoming message as one line). */
function linesOf(child: ChildProcess): { lines: string[]; stderr: () => string } {
  const lines: string[] = [];
  let buf = "";
  let err = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    buf += d;
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts.map((l) => l.trim()).filter(Boolean));
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => (err += d));
  return { lines, stderr: () => err };
}

test(`the spec's wscat check against the gateway on ${runtime}`, async () => {
  const child = spawn("node", [wscatBin, "--no-check", "-c", `wss://127.0.0.1:${gw.port}/ws`], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const out = linesOf(child);
  try {
    // readline still writes its "> " prompt to stdout, in front of the next message.
    const parsed = () =>
      out.lines.flatMap((l) => {
        try {
          return [JSON.parse(l.replace(/^(> )+/, "")) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
    const hello = JSON.stringify({ type: "hello", device_id: device.device_id, token: device.token, client_version: "1.0" });
    // wscat reads stdin only once connected, and prints nothing about connecting without a
    // TTY: the gateway seeing the session is our cue; a second hello covers a lost first one.
    await until(() => gw.sessions > 0, "wscat to connect");
    await sleep(200);
    child.stdin!.write(hello + "\n");
    try {
      await until(() => parsed().some((f) => f.type === "auth_result"), "auth_result", 5000);
    } catch {
      child.stdin!.write(hello + "\n");
      await until(() => parsed().some((f) => f.type === "auth_result"), `auth_result (stderr: ${out.stderr()})`);
    }
    const auth = parsed().find((f) => f.type === "auth_result")!;
    assert.equal(auth.ok, true, JSON.stringify(auth));
    assert.match(String(auth.session_id), /^[0-9a-f]{32}$/);

    child.stdin!.write('{"type":"stream_open","stream_id":"s1"}\n');
    await sleep(100);
    child.stdin!.write('{"type":"stream_data","stream_id":"s1","data":"aGVsbG8="}\n');
    await until(() => parsed().some((f) => f.type === "stream_data"), "the echo");
    const echo = parsed().find((f) => f.type === "stream_data")!;
    assert.deepEqual(echo, { type: "stream_data", stream_id: "s1", data: "aGVsbG8=" });
    assert.ok(!parsed().some((f) => f.type === "error"), out.lines.join("\n"));

    // End of input: wscat closes the WebSocket and exits.
    child.stdin!.end();
    await until(() => gw.sessions === 0, "the session to end");
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill();
    await exited;
  }
});
