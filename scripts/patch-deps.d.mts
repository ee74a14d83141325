// Types for patch-deps.mjs, so its test can import it.
export const POSTGRES_VERSION: string;
export const MARK: string;
export const EDITS: readonly (readonly [from: string, to: string])[];
export class PatchError extends Error {
  readonly code: "patch_does_not_apply";
}
export function patchPostgres(root: string): string[];
