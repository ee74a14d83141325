import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../config/config.ts";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { parseAccessKey } from "../protocol/access-key.ts";
import { accessKeyHook } from "./access-key-hook.ts";

let dir: string;
let certFile: string;
let cert: DevCertificate;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "httvps-hook-"));
  cert = await createDevCertificate();
  certFile = join(dir, "cert.pem");
  await writeFile(certFile, cert.certPem);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const device = { device_id: "d1", token: "t".repeat(43), name: "laptop" };
const keyFor = (env: Record<string, string>) => {
  const r = parseAccessKey(accessKeyHook(loadConfig({ GATEWAY_TLS_CERT: certFile, ...env }))(device));
  assert.ok(r.ok, JSON.stringify(r));
  return r.key;
};

test("a self-signed certificate file is pinned; the address is localhost and the listen port", () => {
  const k = keyFor({ GATEWAY_LISTEN_ADDR: "0.0.0.0:9443" });
  assert.equal(k.host, "localhost");
  assert.equal(k.port, 9443);
  assert.equal(k.pin, cert.sha256);
});

test("with ACME the key names the first domain and pins nothing (the CA's certificate changes on renewal)", () => {
  const k = keyFor({ GATEWAY_ACME_DOMAINS: "vpn.example.com,www.example.com", GATEWAY_LISTEN_ADDR: "0.0.0.0:443" });
  assert.equal(k.host, "vpn.example.com");
  assert.equal(k.port, 443);
  assert.equal(k.pin, undefined);
  const pub = keyFor({ GATEWAY_ACME_DOMAINS: "vpn.example.com", GATEWAY_PUBLIC_URL: "wss://edge.example.com:8443/t" });
  assert.equal(pub.host, "edge.example.com");
  assert.equal(pub.port, 8443);
});

test("behind a proxy (GATEWAY_TLS=off) the key names GATEWAY_PUBLIC_URL and pins nothing: the proxy's certificate is served", () => {
  const k = keyFor({ GATEWAY_TLS: "off", GATEWAY_PUBLIC_URL: "wss://vpn.example.com/ws" });
  assert.equal(k.host, "vpn.example.com");
  assert.equal(k.port, 443);
  assert.equal(k.pin, undefined);
});
