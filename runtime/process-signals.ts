// onSignal for the runtimes whose `process` delivers signals (Node and Bun; Deno has its own API).
import type { ShutdownSignal } from "./types.ts";

export function onSignal(signals: ShutdownSignal[], handler: (signal: ShutdownSignal) => void): () => void {
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
