// Types for procs.mjs, so the TypeScript soak test can use the benchmark's process helpers.
import type { ChildProcess } from "node:child_process";

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | string | null>;
  match: RegExpMatchArray | null;
  stop(graceMs?: number): Promise<number | string | null>;
}
export interface StartOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  ready?: RegExp | (() => Promise<unknown>);
  timeoutMs?: number;
  ulimit?: number;
  stdin?: "ignore" | "pipe";
}
export function start(name: string, cmd: string, args: string[], opts?: StartOptions): Promise<Proc>;
export function stopAll(): Promise<void>;
export function killAllNow(): void;
export function setScratchDir(dir: string): void;
export function freePort(): Promise<number>;
export function sleep(ms: number): Promise<void>;
export function tree(pid: number): number[];
export function treeCpu(pid: number): number;
export function reapedChildrenCpu(): number;
export function rssKiB(pid: number): number;
export function cpuPressure10(): number | null;
export function cpuStallUs(): number | null;
