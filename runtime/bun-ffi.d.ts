// The slice of bun:ffi that ffi-bun.ts uses, declared locally so the type check needs no bun-types.
declare module "bun:ffi" {
  export function dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
}
