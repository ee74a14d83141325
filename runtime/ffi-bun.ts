// bun:ffi behind ffi.ts's vocabulary. Bun passes a typed array given for a "ptr" argument as
// the address of its first byte, and returns pointers as numbers (0 for NULL).
import { dlopen } from "bun:ffi";
import type { FfiArg, FfiResult, FfiSymbols, NativeLibrary } from "./ffi-types.ts";

const argType: Record<FfiArg, string> = { pointer: "ptr", buffer: "ptr", i32: "i32" };
const resultType: Record<FfiResult, string> = { pointer: "ptr", i32: "i32", void: "void" };

export function openNativeLibrary<S extends FfiSymbols>(names: readonly string[], symbols: S): NativeLibrary<S> | null {
  const defs = Object.fromEntries(
    Object.entries(symbols).map(([k, s]) => [k, { args: s.args.map((a) => argType[a]), returns: resultType[s.result] }]),
  );
  for (const name of names) {
    try {
      const lib = dlopen(name, defs);
      return { name, symbols: lib.symbols as NativeLibrary<S>["symbols"] };
    } catch {
      // not here, or a symbol is missing: try the next name
    }
  }
  return null;
}
