// A device's data quota may reset every day, week or month: calendar periods in UTC, so every
// backend (and every operator reading the API) agrees on when a period starts whatever its own
// time zone. Weeks start on Monday (ISO 8601). Periods start on a UTC midnight, so they are
// whole hourly buckets: usage since a period start is exactly a sum of buckets (backend/store/usage.ts).

export const QUOTA_PERIODS = ["none", "day", "week", "month"] as const;
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];

const DAY_MS = 86_400_000;

/** The start of the period `now` is in; null for "none" (usage counts since the last reset). */
export function periodStart(period: QuotaPeriod, now: Date): Date | null {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  switch (period) {
    case "none":
      return null;
    case "day":
      return new Date(Date.UTC(y, m, d));
    case "week": {
      // getUTCDay: Sunday 0 … Saturday 6; days since Monday: Monday 0 … Sunday 6.
      const sinceMonday = (now.getUTCDay() + 6) % 7;
      return new Date(Date.UTC(y, m, d) - sinceMonday * DAY_MS);
    }
    case "month":
      return new Date(Date.UTC(y, m, 1));
  }
}

/** When the period `now` is in ends and usage starts again from zero; null for "none". */
export function periodEnd(period: QuotaPeriod, now: Date): Date | null {
  const start = periodStart(period, now);
  if (!start) return null;
  switch (period) {
    case "day":
      return new Date(start.getTime() + DAY_MS);
    case "week":
      return new Date(start.getTime() + 7 * DAY_MS);
    default:
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
  }
}

/** The current start of every period, as SQL parameters (ISO text; "none" has none). */
export function periodStarts(now: Date): { day: string; week: string; month: string } {
  return {
    day: periodStart("day", now)!.toISOString(),
    week: periodStart("week", now)!.toISOString(),
    month: periodStart("month", now)!.toISOString(),
  };
}

/** The start of the UTC hour `t` is in: an hourly bucket's key. */
export function hourStart(t: Date): Date {
  return new Date(Math.floor(t.getTime() / 3_600_000) * 3_600_000);
}

/** The start of the UTC day `t` is in: a daily bucket's key. */
export function dayStart(t: Date): Date {
  return new Date(Math.floor(t.getTime() / DAY_MS) * DAY_MS);
}

/** A device on "N days from the first connection" gets this expiry when it first connects. */
export function expiryFromFirstConnection(firstConnection: Date, days: number): Date {
  return new Date(firstConnection.getTime() + days * DAY_MS);
}
