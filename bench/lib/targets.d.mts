// Types for targets.mjs, so its test (targets.test.ts) can use the benchmark's module.
export type TargetEntry = {
  item: number;
  target: string;
  row: string;
  runtime: string;
  measured: number;
  needed: number;
  cmp: ">=" | "<=" | "<";
  unit: string;
  met: boolean;
  note?: string;
};
export const GOALS: Record<string, number>;
export const ITEMS: Record<number, string>;
export function fastestOf<T extends { id: string; error?: string }>(rows: T[], ids: string[], key: (r: T) => number): T | null;
export function targets(run: {
  rows?: object[];
  idle?: object[];
  storm?: object | null;
  validate?: object | null;
  footprint?: object | null;
  small: { requests: number; peers: string[] };
}): TargetEntry[];
export function targetsTable(t: TargetEntry[]): string;
