import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { apiOrigin, outlineApi, OutlineApiError, parseOutlineManagerConfig } from "./outline-api.ts";
import { type FakeOutline, startFakeOutline } from "./outline-fake.testing.ts";

const isCode = (code: string) => (e: unknown) => {
  assert.ok(e instanceof OutlineApiError, `expected an OutlineApiError, got ${e}`);
  assert.equal(e.code, code, e.message);
  return true;
};

describe("Outline management API client", () => {
  let fake: FakeOutline;
  before(async () => {
    fake = await startFakeOutline({ portForNewAccessKeys: 12345 });
  });
  after(async () => {
    await fake.close();
  });

  test("server info, create (with a data limit), list, limit changes and delete", async () => {
    const api = outlineApi({ apiUrl: fake.apiUrl, certSha256: fake.certSha256 });
    assert.equal(api.origin, new URL(fake.apiUrl).origin);
    const info = await api.server();
    assert.equal(info.portForNewAccessKeys, 12345);
    assert.equal(info.hostnameForAccessKeys, "127.0.0.1");

    const k = await api.createKey({ name: "dev-1", limitBytes: 5000 });
    assert.equal(k.port, 12345);
    assert.equal(k.method, "chacha20-ietf-poly1305");
    assert.equal(k.password.length, 22);
    assert.deepEqual(k.dataLimit, { bytes: 5000 });
    assert.deepEqual(fake.requests.at(-1), {
      method: "POST",
      path: "/access-keys",
      body: { name: "dev-1", limit: { bytes: 5000 } },
    });
    assert.deepEqual((await api.listKeys()).map((x) => x.id), [k.id]);

    await api.setDataLimit(k.id, 7000);
    assert.deepEqual(fake.keys.get(k.id)!.dataLimit, { bytes: 7000 });
    assert.deepEqual(fake.requests.at(-1), {
      method: "PUT",
      path: `/access-keys/${k.id}/data-limit`,
      body: { limit: { bytes: 7000 } },
    });
    await api.setDataLimit(k.id, null);
    assert.equal(fake.keys.get(k.id)!.dataLimit, undefined);
    assert.equal(fake.requests.at(-1)!.method, "DELETE");

    assert.equal(await api.deleteKey(k.id), true);
    assert.equal(fake.keys.size, 0);
    assert.equal(await api.deleteKey(k.id), false, "an already deleted key is not an error");
    await assert.rejects(
      api.setDataLimit(k.id, 1),
      (e) => isCode("outline_api_error")(e) && (e as OutlineApiError).status === 404,
    );
  });

  test("a wrong certificate pin fails before any request is sent", async () => {
    const before = fake.requests.length;
    const wrong = "ab".repeat(32);
    const api = outlineApi({ apiUrl: fake.apiUrl, certSha256: wrong });
    for (const attempt of [() => api.createKey({ name: "x", limitBytes: 1 }), () => api.server(), () => api.deleteKey("0")]) {
      await assert.rejects(attempt(), (e) => {
        isCode("outline_api_pin_mismatch")(e);
        assert.ok(!(e as Error).message.includes(new URL(fake.apiUrl).pathname), "the secret path is not in the message");
        return true;
      });
    }
    assert.equal(fake.requests.length, before, "the fake saw no request at all");
    assert.equal(fake.keys.size, 0);
  });

  test("error answers carry their status; the secret path never appears in messages", async () => {
    const secretPath = new URL(fake.apiUrl).pathname;
    const wrongPath = outlineApi({ apiUrl: fake.wrongSecretUrl, certSha256: fake.certSha256 });
    await assert.rejects(wrongPath.server(), (e) => {
      isCode("outline_api_error")(e);
      assert.equal((e as OutlineApiError).status, 404);
      assert.ok(!(e as Error).message.includes(secretPath.slice(1)));
      return true;
    });
    fake.failWith = 500;
    try {
      const api = outlineApi({ apiUrl: fake.apiUrl, certSha256: fake.certSha256 });
      await assert.rejects(api.createKey(), (e) => isCode("outline_api_error")(e) && (e as OutlineApiError).status === 500);
    } finally {
      fake.failWith = undefined;
    }
  });

  test("an unreachable or silent server is outline_api_unreachable, bounded by the timeout", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = outlineApi({ apiUrl: `https://127.0.0.1:${port}/s3cret`, certSha256: fake.certSha256, timeoutMs: 2000 });
    await assert.rejects(
      refused.server(),
      (e) => isCode("outline_api_unreachable")(e) && !(e as Error).message.includes("s3cret"),
    );

    // Accepts TCP, never speaks TLS: the handshake cannot finish.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const api = outlineApi({
        apiUrl: `https://127.0.0.1:${(silent.address() as net.AddressInfo).port}/s3cret`,
        certSha256: fake.certSha256,
        timeoutMs: 300,
      });
      await assert.rejects(api.server(), isCode("outline_api_unreachable"));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  test("the installer's JSON and bad configurations", () => {
    const line = `{"apiUrl":"https://203.0.113.7:37291/AbCdEfGhIjKlMnOpQrStUv","certSha256":"${"AB".repeat(32)}"}`;
    assert.deepEqual(parseOutlineManagerConfig(line), {
      apiUrl: "https://203.0.113.7:37291/AbCdEfGhIjKlMnOpQrStUv",
      certSha256: "ab".repeat(32),
    });
    assert.equal(
      parseOutlineManagerConfig(`installer says: ${line}\n`).apiUrl,
      "https://203.0.113.7:37291/AbCdEfGhIjKlMnOpQrStUv",
    );
    assert.equal(apiOrigin("https://203.0.113.7:37291/AbCdEfGhIjKlMnOpQrStUv"), "https://203.0.113.7:37291");
    for (
      const bad of [
        "",
        "{}",
        "not json",
        '{"apiUrl":"http://h/x","certSha256":"' + "ab".repeat(32) + '"}',
        '{"apiUrl":"https://h/x","certSha256":"abc"}',
      ]
    ) {
      assert.throws(() => parseOutlineManagerConfig(bad), isCode("outline_api_bad_config"));
    }
    assert.throws(() => outlineApi({ apiUrl: "nope", certSha256: "ab".repeat(32) }), isCode("outline_api_bad_config"));
  });
});
