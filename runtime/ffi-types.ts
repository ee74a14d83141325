// The shapes shared by ffi.ts and its two runtime adapters (ffi-bun.ts, ffi-deno.ts).

export type FfiArg = "pointer" | "buffer" | "i32";
export type FfiResult = "pointer" | "i32" | "void";
export type FfiSymbols = Record<string, { readonly args: readonly FfiArg[]; readonly result: FfiResult }>;

// deno-lint-ignore no-explicit-any
export type NativeFunction = (...args: any[]) => any;

/** Pointers come back as the runtime represents them (a number on Bun, an object on Deno; NULL is null or 0). */
export interface NativeLibrary<S extends FfiSymbols> {
  /** The name it was opened by. */
  readonly name: string;
  readonly symbols: { readonly [K in keyof S]: NativeFunction };
}

export type NativeLibraryOpener = <S extends FfiSymbols>(names: readonly string[], symbols: S) => NativeLibrary<S> | null;
