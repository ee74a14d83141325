// Deno.dlopen behind ffi.ts's vocabulary. Deno returns pointers as objects (null for NULL).
// Without --allow-ffi, Deno.dlopen would prompt on a terminal (and hang a service's start) or
// throw: the permission is queried first, and without it there is no library.
import type { FfiArg, FfiResult, FfiSymbols, NativeLibrary } from "./ffi-types.ts";

// The slice of Deno's API used here, declared locally so the type check needs no Deno types.
declare const Deno: {
  permissions: { querySync(d: { name: "ffi" }): { state: string } };
  dlopen(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
};

const argType: Record<FfiArg, string> = { pointer: "pointer", buffer: "buffer", i32: "i32" };
const resultType: Record<FfiResult, string> = { pointer: "pointer", i32: "i32", void: "void" };

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

export function openNativeLibrary<S extends FfiSymbols>(names: readonly string[], symbols: S): NativeLibrary<S> | null {
  if (!ffiGranted()) return null;
  const defs = Object.fromEntries(
    Object.entries(symbols).map(([k, s]) => [k, { parameters: s.args.map((a) => argType[a]), result: resultType[s.result] }]),
  );
  for (const name of names) {
    try {
      const lib = Deno.dlopen(name, defs);
      return { name, symbols: lib.symbols as NativeLibrary<S>["symbols"] };
    } catch {
      // not here, or a symbol is missing: try the next name
    }
  }
  return null;
}
