// `import path from "….wasm" with { type: "file" }` in cli/compiled.ts: Bun yields the embedded file's path.
declare module "*.wasm" {
  const path: string;
  export default path;
}
declare module "*.data" {
  const path: string;
  export default path;
}
declare module "*.tar.br" {
  const path: string;
  export default path;
}
