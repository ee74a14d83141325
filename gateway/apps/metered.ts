// An upstream Duplex that counts the payload bytes going through it: up = written to the
// target, down = read from it. The app streams' usage and metrics are these counts, the same
// plaintext bytes a native session's streams count.
import type { Duplex, DuplexHandlers } from "../../transport/stream.ts";

export interface Meter {
  bytes(direction: "up" | "down", n: number): void;
}

export function metered(inner: Duplex, meter: Meter): Duplex {
  return {
    start(h: DuplexHandlers) {
      inner.start({
        data(chunk) {
          meter.bytes("down", chunk.length);
          h.data(chunk);
        },
        end: () => h.end(),
        drain: () => h.drain(),
        close: (err) => h.close(err),
      });
    },
    write(chunk) {
      meter.bytes("up", chunk.length);
      return inner.write(chunk);
    },
    closeWrite: () => inner.closeWrite(),
    close: (err) => inner.close(err),
    pause: () => inner.pause(),
    resume: () => inner.resume(),
  };
}
