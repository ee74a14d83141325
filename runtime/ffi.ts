// Calling a C library from TypeScript, where the runtime can: bun:ffi on Bun, Deno.dlopen on
// Deno (only when --allow-ffi is already granted: a prompt would hang a server's start), none
// on Node (null). The one place that asks which runtime's FFI to use; the callers describe the
// symbols in the small vocabulary below and get plain functions back, the same on both.
//
// Argument kinds: "pointer" is an opaque pointer a previous call returned (or null),
// "buffer" a Uint8Array/Int32Array whose memory C reads or writes during the call (a
// subarray points at its own first byte), "i32" a 32-bit integer.
import type { NativeLibraryOpener } from "./ffi-types.ts";

export type { FfiArg, FfiResult, FfiSymbols, NativeLibrary } from "./ffi-types.ts";

const g = globalThis as { Bun?: unknown; Deno?: unknown };

const opener: NativeLibraryOpener | null = g.Bun !== undefined
  ? (await import("./ffi-bun.ts")).openNativeLibrary
  : g.Deno !== undefined
  ? (await import("./ffi-deno.ts")).openNativeLibrary
  : null;

/**
 * Opens the first of `names` (sonames, searched the way dlopen searches) that loads and has
 * every symbol; null when none does or this runtime has no FFI. Never throws.
 */
export const openNativeLibrary: NativeLibraryOpener = (names, symbols) => opener?.(names, symbols) ?? null;
