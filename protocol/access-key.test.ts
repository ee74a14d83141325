import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type AccessKey, type AccessKeyResult, formatAccessKey, parseAccessKey, redactAccessKey } from "./access-key.ts";

const PIN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

function keyOf(r: AccessKeyResult): AccessKey {
  if (!r.ok) assert.fail(`expected a key, got: ${r.error.message}`);
  return r.key;
}
function messageOf(r: AccessKeyResult): string {
  if (r.ok) assert.fail(`expected bad_access_key, got ${JSON.stringify(r.key)}`);
  assert.equal(r.error.code, "bad_access_key");
  return r.error.message;
}

describe("access key: parse", () => {
  test("the documented example", () => {
    const k = keyOf(
      parseAccessKey(`httvps://dev-1:s3cr3t@gw.example.com:8443/ws?sni=cdn.example.com&pin=sha256:${PIN}&transport=ws#Home`),
    );
    assert.deepStrictEqual(k, {
      host: "gw.example.com",
      port: 8443,
      path: "/ws",
      deviceId: "dev-1",
      token: "s3cr3t",
      sni: "cdn.example.com",
      pin: PIN,
      transport: "ws",
      name: "Home",
    });
  });

  test("defaults: port 443, path /ws, transport ws", () => {
    assert.deepStrictEqual(keyOf(parseAccessKey("httvps://d:t@example.com")), {
      host: "example.com",
      port: 443,
      path: "/ws",
      deviceId: "d",
      token: "t",
      transport: "ws",
    });
  });

  test("IPv6 in brackets, IPv4, custom path, h2", () => {
    const v6 = keyOf(parseAccessKey("httvps://d:t@[::1]:8443/tunnel/v1?transport=h2"));
    assert.deepStrictEqual([v6.host, v6.port, v6.path, v6.transport], ["::1", 8443, "/tunnel/v1", "h2"]);
    const v6b = keyOf(parseAccessKey("httvps://d:t@[2001:db8::5]"));
    assert.deepStrictEqual([v6b.host, v6b.port], ["2001:db8::5", 443]);
    const v4 = keyOf(parseAccessKey("httvps://d:t@127.0.0.1:1/x"));
    assert.deepStrictEqual([v4.host, v4.port, v4.path], ["127.0.0.1", 1, "/x"]);
  });

  test("percent-encoded credentials and name; scheme case and surrounding whitespace", () => {
    const k = keyOf(parseAccessKey("  HTTVPS://dev%40home:a%2Fb%3Ac%40d@example.com:443/ws#My%20gateway%20%E2%9C%93\n"));
    assert.deepStrictEqual([k.deviceId, k.token, k.name], ["dev@home", "a/b:c@d", "My gateway ✓"]);
  });

  test("pin: upper case and colon-separated pairs are normalised", () => {
    const colons = PIN.toUpperCase().match(/../g)!.join(":");
    assert.equal(keyOf(parseAccessKey(`httvps://d:t@h:1/ws?pin=sha256:${colons}`)).pin, PIN);
    assert.equal(keyOf(parseAccessKey(`httvps://d:t@h:1/ws?pin=SHA256:${PIN.toUpperCase()}`)).pin, PIN);
  });

  test("unknown query parameters are ignored", () => {
    const k = keyOf(parseAccessKey("httvps://d:t@h:1/ws?future=1&&sni=x.example"));
    assert.equal(k.sni, "x.example");
  });
});

describe("access key: format round-trips", () => {
  const keys: AccessKey[] = [
    { host: "gw.example.com", port: 8443, path: "/ws", deviceId: "dev-1", token: "tok", transport: "ws" },
    {
      host: "::1",
      port: 443,
      path: "/a/b",
      deviceId: "d",
      token: "t",
      transport: "h2",
      sni: "front.example",
      pin: PIN,
      name: "Test #1 / ü",
    },
    {
      host: "10.0.0.1",
      port: 65535,
      path: "/",
      deviceId: "weird id:@/?#&=%",
      token: "x:y@z/?#%+ &=",
      transport: "ws",
      name: "n",
    },
    { host: "2001:db8::1", port: 1, path: "/ws", deviceId: "ж", token: "🔑".repeat(10), transport: "ws", pin: PIN },
  ];
  for (const k of keys) {
    test(`${k.host} ${k.deviceId}`, () => {
      const s = formatAccessKey(k);
      assert.deepStrictEqual(keyOf(parseAccessKey(s)), k, s);
      assert.equal(formatAccessKey(keyOf(parseAccessKey(s))), s);
    });
  }

  test("the documented shape", () => {
    assert.equal(
      formatAccessKey({
        host: "gw.example.com",
        port: 8443,
        deviceId: "dev-1",
        token: "tok",
        pin: PIN,
        sni: "cdn.example.com",
        name: "Home",
      }),
      `httvps://dev-1:tok@gw.example.com:8443/ws?sni=cdn.example.com&pin=sha256:${PIN}#Home`,
    );
  });
});

describe("access key: bad keys", () => {
  const cases: [input: string, mentions: string][] = [
    ["", "httvps://"],
    ["https://d:t@h:1/ws", "httvps://"],
    ["httvps://h:1/ws", "device_id"],
    ["httvps://d@h:1/ws", "token"],
    ["httvps://:t@h:1/ws", "device id"],
    ["httvps://d:@h:1/ws", "token"],
    ["httvps://d:t@:1/ws", "host"],
    ["httvps://d:t@/ws", "host"],
    ["httvps://d:t@h:0/ws", "port"],
    ["httvps://d:t@h:65536/ws", "port"],
    ["httvps://d:t@h:80x/ws", "port"],
    ["httvps://d:t@h:/ws", "port"],
    ["httvps://d:t@::1:443/ws", "brackets"],
    ["httvps://d:t@[::1/ws", "["],
    ["httvps://d:t@[zz]:1/ws", "IPv6"],
    ["httvps://d:t@[::1]x/ws", ":port"],
    ["httvps://d:t@exa mple.com/ws", "whitespace"],
    ["httvps://d:t@exa_mple..com/ws", "host"],
    ["httvps://d:t@h:1/w s", "whitespace"],
    ["httvps://d:t@h:1/ws%20x", "path"],
    ["httvps://d:t@h:1/ws?pin=abc", "pin"],
    [`httvps://d:t@h:1/ws?pin=${PIN}`, "pin"],
    [`httvps://d:t@h:1/ws?pin=sha256:${PIN}00`, "pin"],
    ["httvps://d:t@h:1/ws?transport=quic", "transport"],
    ["httvps://d:t@h:1/ws?sni=a&sni=b", "twice"],
    ["httvps://d:t@h:1/ws?sni=bad%20name", "sni"],
    ["httvps://d%zz:t@h:1/ws", "percent"],
    ["httvps://d:t%E2@h:1/ws", "token"],
    ["httvps://d:t@h:1/ws#%ZZ", "name"],
    ["httvps://d%00:t@h:1/ws", "device id"],
    ["httvps://d:t@h:1/" + "a".repeat(9000), "longer"],
  ];
  for (const [input, mentions] of cases) {
    test(JSON.stringify(input.slice(0, 60)), () => {
      const m = messageOf(parseAccessKey(input));
      assert.ok(m.includes(mentions), `"${m}" should mention "${mentions}"`);
    });
  }

  test("a non-string is a typed error, not a throw", () => {
    messageOf(parseAccessKey(42 as unknown as string));
  });

  test("messages and redacted keys never contain the token", () => {
    const token = "SuperSecretToken123";
    for (
      const s of [
        `httvps://d:${token}@h:0/ws`,
        `httvps://d:${token}@h:1/ws?pin=nope`,
        `httvps://d:${token}@[::1/ws`,
        `httvps://d:${token}@h:1/w%20s`,
      ]
    ) {
      assert.ok(!messageOf(parseAccessKey(s)).includes(token));
    }
    const good = `httvps://dev:${token}@h:1/ws#n`;
    assert.equal(redactAccessKey(good), "httvps://dev:REDACTED@h:1/ws#n");
    assert.ok(!redactAccessKey(keyOf(parseAccessKey(good))).includes(token));
    assert.equal(redactAccessKey(`httvps://d:${token}@h:0/ws`), "httvps://[unparseable access key]");
  });
});
