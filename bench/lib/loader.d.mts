// Types for loader.mjs, so the TypeScript soak test can use the benchmark's module.
import type { Proc } from "./procs.mjs";

export function pool(n: number, inFlight: number, one: () => Promise<void>): Promise<void>;
export function serveCommands(handlers: Record<string, (...args: string[]) => unknown>): Promise<void>;
export function commandChannel(
  proc: Proc,
): { ask<T = Record<string, unknown>>(line: string, timeoutMs: number): Promise<T>; close(): void };
