// The fields every API shape is made of. Text that is stored refuses NUL: PostgreSQL text
// cannot hold U+0000, so it is a 400 here, not a 500 later.
import { z } from "zod";
import { unbracketHost } from "../../protocol/ip-address.ts";

const NO_NUL = /^[^\u0000]*$/;
const NUL_MESSAGE = "must not contain NUL characters";
export const stored = () => z.string().regex(NO_NUL, NUL_MESSAGE);
export const name = z.string().trim().min(1).max(100).regex(NO_NUL, NUL_MESSAGE);
export const isoDate = z.iso.datetime({ offset: true });
export const uuid = z.uuid();
export const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
// A bracketed IPv6 address ("[2001:db8::1]", as in a URL) is stored without its brackets.
export const host = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:_\-\[\]%]+$/, "expected a host name or an IP address")
  .transform(unbracketHost);

/** A keyset page: `limit` rows after `cursor` (a value the previous page returned). */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
};

/** A time range in a query string; each route says what it defaults to. */
export const rangeQuery = {
  from: isoDate.optional(),
  to: isoDate.optional(),
};
