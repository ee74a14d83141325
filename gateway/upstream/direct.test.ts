import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { type Dialer, StreamError, type Target } from "../../transport/stream.ts";
import { tcpDialer } from "../../transport/tcp.ts";
import { parseIP } from "../../protocol/ip-address.ts";
import { addressGuard, isGlobalAddress, parseCidrList } from "./address-guard.ts";
import { directDialer } from "./direct.ts";

const ip = (s: string) => parseIP(s)!;

test("non-global addresses are refused, global ones pass", () => {
  const refused = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:c0a8:0101::1",
    "::127.0.0.1",
  ];
  for (const a of refused) assert.equal(isGlobalAddress(ip(a)), false, a);
  const allowed = [
    "1.1.1.1",
    "8.8.8.8",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
  ];
  for (const a of allowed) assert.equal(isGlobalAddress(ip(a)), true, a);
});

test("the allow-list opens exactly its ranges", () => {
  const g = addressGuard(parseCidrList("127.0.0.0/8, fd00::/8"));
  assert.equal(g.allows(ip("127.0.0.1")), true);
  assert.equal(g.allows(ip("::ffff:127.0.0.1")), true);
  assert.equal(g.allows(ip("fd00::5")), true);
  assert.equal(g.allows(ip("10.0.0.1")), false);
  assert.equal(g.allows(ip("::1")), false);
  assert.throws(() => parseCidrList("10.0.0.0/33"), { code: "bad_cidr" });
  assert.throws(() => parseCidrList("nonsense"), { code: "bad_cidr" });
});

function recordingDialer(): Dialer & { dialed: Target[] } {
  const dialed: Target[] = [];
  return {
    dialed,
    async dial(t) {
      dialed.push(t);
      throw new StreamError("upstream_refused", "recorded");
    },
  };
}

test("names are resolved once and the checked address is what gets dialed (no rebinding gap)", async () => {
  let calls = 0;
  const base = recordingDialer();
  // A rebinding resolver: public the first time, loopback afterwards.
  const d = directDialer(base, { resolve: async () => (calls++ === 0 ? ["93.184.216.34"] : ["127.0.0.1"]) });
  await assert.rejects(d.dial({ host: "rebind.example", port: 80 }), { code: "upstream_refused" });
  assert.equal(calls, 1);
  assert.deepEqual(base.dialed, [{ host: "93.184.216.34", port: 80 }]);
  await assert.rejects(d.dial({ host: "rebind.example", port: 80 }), { code: "target_forbidden" });
  assert.equal(base.dialed.length, 1, "the private answer is never dialed");
});

test("a name with private and public answers dials only the public one; bad targets are typed", async () => {
  const base = recordingDialer();
  const d = directDialer(base, { resolve: async () => ["10.0.0.1", "1.2.3.4"] });
  await assert.rejects(d.dial({ host: "mixed.example", port: 443 }));
  assert.deepEqual(base.dialed, [{ host: "1.2.3.4", port: 443 }]);
  await assert.rejects(d.dial({ host: "127.0.0.1", port: 80 }), { code: "target_forbidden" });
  await assert.rejects(d.dial({ host: "::1", port: 80 }), { code: "target_forbidden" });
  await assert.rejects(d.dial({ host: "[::1]", port: 80 }), { code: "bad_target" }, "a Target's host never has brackets");
  await assert.rejects(d.dial({ host: "bad host", port: 80 }), { code: "bad_target" });
  await assert.rejects(d.dial({ host: "x.example", port: 0 }), { code: "bad_target" });
  const failing = directDialer(base, {
    resolve: async () => {
      throw new Error("NXDOMAIN");
    },
  });
  await assert.rejects(failing.dial({ host: "nx.example", port: 80 }), { code: "upstream_unreachable" });
});

test("with loopback allowed, a real connection goes through", async () => {
  const server: Server = createServer((c) => c.end("hi"));
  const port = await new Promise<number>((r) =>
    server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port))
  );
  try {
    const d = directDialer(tcpDialer(), { allow: parseCidrList("127.0.0.0/8") });
    const conn = await d.dial({ host: "127.0.0.1", port });
    const got = await new Promise<string>((resolve) => {
      let s = "";
      conn.start({ data: (c) => (s += new TextDecoder().decode(c)), end: () => {}, drain: () => {}, close: () => resolve(s) });
      conn.closeWrite();
    });
    assert.equal(got, "hi");
    await assert.rejects(directDialer(tcpDialer()).dial({ host: "127.0.0.1", port }), { code: "target_forbidden" });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
