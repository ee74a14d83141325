import { test } from "node:test";
import assert from "node:assert/strict";
import { dayStart, expiryFromFirstConnection, hourStart, periodEnd, periodStart, periodStarts } from "./quota-period.ts";

const at = (iso: string) => new Date(iso);
const iso = (d: Date | null) => d?.toISOString() ?? null;

test("day periods start and end at UTC midnight, the last millisecond still in the old day", () => {
  assert.equal(iso(periodStart("day", at("2025-03-09T23:59:59.999Z"))), "2025-03-09T00:00:00.000Z");
  assert.equal(iso(periodEnd("day", at("2025-03-09T23:59:59.999Z"))), "2025-03-10T00:00:00.000Z");
  assert.equal(iso(periodStart("day", at("2025-03-10T00:00:00.000Z"))), "2025-03-10T00:00:00.000Z");
});

test("weeks start on Monday (ISO 8601), Sunday night belongs to the week before", () => {
  // 2025-03-09 is a Sunday, 2025-03-10 a Monday.
  assert.equal(iso(periodStart("week", at("2025-03-09T23:59:59.999Z"))), "2025-03-03T00:00:00.000Z");
  assert.equal(iso(periodEnd("week", at("2025-03-09T23:59:59.999Z"))), "2025-03-10T00:00:00.000Z");
  assert.equal(iso(periodStart("week", at("2025-03-10T00:00:00.000Z"))), "2025-03-10T00:00:00.000Z");
  assert.equal(iso(periodStart("week", at("2025-03-12T12:00:00Z"))), "2025-03-10T00:00:00.000Z");
  // across a year boundary: 2025-01-01 is a Wednesday
  assert.equal(iso(periodStart("week", at("2025-01-01T08:00:00Z"))), "2024-12-30T00:00:00.000Z");
});

test("months are calendar months of any length, leap February included", () => {
  assert.equal(iso(periodStart("month", at("2024-02-29T23:59:59.999Z"))), "2024-02-01T00:00:00.000Z");
  assert.equal(iso(periodEnd("month", at("2024-02-29T23:59:59.999Z"))), "2024-03-01T00:00:00.000Z");
  assert.equal(iso(periodStart("month", at("2024-03-01T00:00:00Z"))), "2024-03-01T00:00:00.000Z");
  assert.equal(iso(periodEnd("month", at("2024-12-31T23:00:00Z"))), "2025-01-01T00:00:00.000Z");
  assert.equal(iso(periodEnd("month", at("2025-01-31T00:00:00Z"))), "2025-02-01T00:00:00.000Z");
});

test("no period has no start and no end; the SQL parameters carry the other three", () => {
  assert.equal(periodStart("none", at("2025-03-09T12:00:00Z")), null);
  assert.equal(periodEnd("none", at("2025-03-09T12:00:00Z")), null);
  assert.deepEqual(periodStarts(at("2025-03-09T12:00:00Z")), {
    day: "2025-03-09T00:00:00.000Z",
    week: "2025-03-03T00:00:00.000Z",
    month: "2025-03-01T00:00:00.000Z",
  });
});

test("bucket keys and first-connection expiry", () => {
  assert.equal(iso(hourStart(at("2025-03-09T13:59:59.999Z"))), "2025-03-09T13:00:00.000Z");
  assert.equal(iso(dayStart(at("2025-03-09T13:59:59.999Z"))), "2025-03-09T00:00:00.000Z");
  assert.equal(iso(expiryFromFirstConnection(at("2025-03-09T13:05:00Z"), 30)), "2025-04-08T13:05:00.000Z");
});
