// Where a runtime listens with SO_REUSEPORT (Bun always; Deno for a gateway's workers), a bind
// would quietly share a port another reuse-port program holds; one plain bind first keeps
// "port in use" an error, as on Node.
import net from "node:net";
import { RuntimeError } from "./types.ts";

export function assertPortFree(hostname: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", (e) => reject(new RuntimeError("listen_failed", `cannot listen on ${hostname}:${port}: ${e.message}`)));
    probe.listen({ host: hostname, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
