// Every API failure is `{"error":{"code","message"}}` with a status that fits.
// Handlers throw ApiError; the app's onError turns it into the response.
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    /** Headers the answer carries (Retry-After on a 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, "not_found", `no such ${what}`);

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
