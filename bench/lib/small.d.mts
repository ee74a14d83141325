// Types for small.mjs, so its test (small.test.ts) can use the benchmark's module.
export const SMALL: { requests: number; parallel: number; minBytes: number; maxBytes: number; seed: number };
export const SMALL_PEERS: string[];
export function smallSizes(o?: { requests: number; minBytes: number; maxBytes: number; seed: number }): number[];
export function smallBatch(
  socksPort: number,
  targetPort: number,
  sizes?: number[],
  parallel?: number,
  maxTimeS?: number,
): Promise<{ wallMs: number; requests: number; bytes: number }>;
