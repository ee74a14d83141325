// TCP_NODELAY on the connections the gateway's TLS listener accepts, read back from the kernel
// (getsockopt on the accepted socket's descriptor, found through /proc), on every runtime whose
// FFI can read it: Deno, whose TLS Deno.serve leaves it off unless the adapter sets it on the
// listener (socket-nodelay.ts), and Bun. Node has no FFI to read it with.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { createDevCertificate, type DevCertificate } from "../gateway/certs.ts";
import { testDecoy } from "../gateway/decoy-site.testing.ts";
import { type ListeningServer, runtime } from "./index.ts";
import { recorder, testGateway, until } from "./serve.testing.ts";
import { setListenerNoDelay, socketFds, socketOptionsAvailable, tcpNoDelay } from "./socket-nodelay.ts";

const onLinux = process.platform === "linux";
const skip = !socketOptionsAvailable || !onLinux ? `no FFI to read socket options on ${runtime} here` : false;

/** Opens a TLS connection to `port` and resolves once the handshake is done. */
function tlsConnection(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost", ALPNProtocols: ["http/1.1"] });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** The descriptor of the server's end of `client` in this process (the gateway runs here too). */
async function acceptedFd(serverPort: number, client: net.Socket): Promise<number> {
  let fds: number[] = [];
  await until(
    "the accepted socket in /proc",
    () => (fds = socketFds({ localPort: serverPort, remotePort: client.localPort! })).length > 0,
  );
  assert.equal(fds.length, 1, "exactly one accepted socket for this connection");
  return fds[0]!;
}

describe(`TCP_NODELAY on the gateway's accepted sockets on ${runtime}`, { skip }, () => {
  let cert: DevCertificate;
  let gw: ListeningServer;
  before(async () => {
    cert = await createDevCertificate();
    gw = await testGateway(cert, { fetch: testDecoy(), accept: () => recorder().handler });
  });
  after(async () => {
    await gw.close();
  });

  test("a TLS connection accepted by the gateway has TCP_NODELAY on", async () => {
    const client = await tlsConnection(gw.port, cert.certPem);
    try {
      const fd = await acceptedFd(gw.port, client);
      assert.equal(tcpNoDelay(fd), true);
    } finally {
      client.destroy();
    }
  });

  test("the reading is real: a plain listener's accepted socket reads off, and on once its listener has it", async () => {
    // node:net sets no-delay on the sockets it accepts itself, so a raw listener of this
    // process is only visible as a descriptor: the server end is read before node:net is told.
    const accepted: net.Socket[] = [];
    const server = net.createServer({ noDelay: false, pauseOnConnect: true }, (s) => void accepted.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const first = net.connect(port, "127.0.0.1");
      await new Promise((r) => first.once("connect", r));
      const off = tcpNoDelay(await acceptedFd(port, first));
      first.destroy();
      assert.equal(setListenerNoDelay(port), 1, "one listening socket of this process on the port");
      const second = net.connect(port, "127.0.0.1");
      await new Promise((r) => second.once("connect", r));
      const on = tcpNoDelay(await acceptedFd(port, second));
      second.destroy();
      assert.equal(on, true, "inherited from the listener");
      // Where the runtime's own accept already sets it (Bun's, Deno's node:net), the first reads on too.
      if (runtime === "deno") assert.equal(off, false, "Deno's node:net with noDelay: false leaves it off");
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test("nothing is found for a port nobody listens on", () => {
    assert.deepEqual(socketFds({ localPort: 1 }), []);
    assert.equal(setListenerNoDelay(1), 0);
  });
});
