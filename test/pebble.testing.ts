// Debian's pebble (Let's Encrypt's ACME test server) for the ACME tests, on loopback: its
// directory and management ports chosen free, its own HTTPS certificate made here (the Debian
// package ships none), and its validations sent to the gateway's ports — `httpPort`/`tlsPort`
// in its config — for names our DNS responder (-dnsserver) answers with 127.0.0.1.
// PEBBLE_VA_NOSLEEP skips its random waits; PEBBLE_VA_ALWAYS_VALID=0 keeps validation real;
// PEBBLE_AUTHZREUSE=0 makes every order (a renewal too) validate again. Its 5% of rejected
// nonces stay on: the client must retry them.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import https from "node:https";
import { join } from "node:path";
import { createDevCertificate } from "../gateway/certs.ts";
import { freePort } from "../shadowsocks/ss-server.testing.ts";
import { type DnsResponder, startDnsResponder } from "./dns.testing.ts";

export const pebbleInstalled = spawnSync("pebble", ["-h"]).error === undefined;

export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** The PEM file of pebble's own HTTPS certificate: GATEWAY_ACME_CA_FILE. */
  caFile: string;
  /** The root that issued the gateway's certificates (GET /roots/0 on the management port), PEM. */
  root(): Promise<string>;
  output(): string;
  close(): Promise<void>;
}

function get(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    }).on("error", reject);
  });
}

/** pebble in `dir`, validating on 127.0.0.1 at `httpPort` (HTTP-01) and `tlsPort` (TLS-ALPN-01). */
export async function startPebble(dir: string, ports: { httpPort: number; tlsPort: number }): Promise<Pebble> {
  const cert = await createDevCertificate({ hostnames: ["localhost"], ips: ["127.0.0.1"] });
  const caFile = join(dir, "pebble-cert.pem");
  await writeFile(caFile, cert.certPem);
  await writeFile(join(dir, "pebble-key.pem"), cert.keyPem, { mode: 0o600 });
  const [acmePort, managementPort] = [await freePort(), await freePort()];
  const config = join(dir, "pebble-config.json");
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: caFile,
        privateKey: join(dir, "pebble-key.pem"),
        httpPort: ports.httpPort,
        tlsPort: ports.tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const dns: DnsResponder = await startDnsResponder("127.0.0.1");
  const child: ChildProcess = spawn("pebble", ["-config", config, "-dnsserver", `127.0.0.1:${dns.port}`, "-strict=false"], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_VA_ALWAYS_VALID: "0", PEBBLE_AUTHZREUSE: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await dns.close();
  };
  const deadline = Date.now() + 15_000;
  while (!/Listening on: /.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`pebble did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    caFile,
    root: () => get(`https://127.0.0.1:${managementPort}/roots/0`, cert.certPem),
    output: () => out,
    close,
  };
}
