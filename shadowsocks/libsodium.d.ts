// The raw emscripten build ships no types; sodium.ts declares the few functions it calls.
declare module "libsodium" {
  const factory: (opts: object) => Promise<unknown>;
  export default factory;
}
