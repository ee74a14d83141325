-- What the console draws (docs/10-console.md): usage as time buckets, quotas that reset every
-- day, week or month, expiry that starts at the first connection, node health history, and
-- which gateways report, with what.

-- Usage in UTC hours, per device, per node and for all traffic together ('all', whose
-- subject is the nil uuid), so every chart is one indexed range read whatever the number of
-- devices. A gateway report adds its deltas to the current hour's rows (backend/store/sessions.ts);
-- the maintenance job moves hours older than USAGE_HOURLY_RETENTION into usage_daily. A byte
-- is in exactly one of the two tables, so usage since a time is the sum of both.
-- No foreign keys: a node's (or a revoked device's) history outlives it.
create table usage_hourly (
  kind        text not null check (kind in ('device', 'node', 'all')),
  subject_id  uuid not null,
  hour        timestamptz not null,
  bytes_up    bigint not null default 0,
  bytes_down  bigint not null default 0,
  primary key (kind, subject_id, hour)
);
create index usage_hourly_hour on usage_hourly (hour);

create table usage_daily (
  kind        text not null check (kind in ('device', 'node', 'all')),
  subject_id  uuid not null,
  day         date not null,         -- the UTC day
  bytes_up    bigint not null default 0,
  bytes_down  bigint not null default 0,
  primary key (kind, subject_id, day)
);

-- Quota periods and expiry modes.
--   quota_period: the quota counts usage since the start of the current UTC day, ISO week or
--     calendar month, or ('none') since the device's last usage reset.
--   expire_after_days: "N days from the first connection". While expires_at is null the
--     device is on hold; its first successful validation sets expires_at to that moment + N
--     days (as Marzban's on_hold does). Setting expires_at directly clears it.
--   first_connected_at: the first successful validation, whatever the expiry mode.
--   usage_reset_at: the last "reset usage".
alter table devices
  add column quota_period       text not null default 'none' check (quota_period in ('none', 'day', 'week', 'month')),
  add column expire_after_days  integer check (expire_after_days between 1 and 36500),
  add column first_connected_at timestamptz,
  add column usage_reset_at     timestamptz;

update devices d set first_connected_at = s.first
  from (select device_id, min(opened_at) as first from sessions group by device_id) s
 where s.device_id = d.id;

-- The quota's counter: bytes since period_start (null: the period "none", since the last
-- reset). A report whose period start differs from the stored one starts the counter again,
-- so a period rolls over without any job; validation reads it in O(1).
alter table device_usage
  add column period_start       timestamptz,
  add column period_bytes_up    bigint not null default 0,
  add column period_bytes_down  bigint not null default 0;
update device_usage set period_bytes_up = bytes_up, period_bytes_down = bytes_down;

-- The node health checker's results, kept NODE_HEALTH_RETENTION for the history charts.
create table node_checks (
  node_id     uuid not null references nodes (id) on delete cascade,
  checked_at  timestamptz not null,
  status      text not null check (status in ('up', 'down')),
  latency_ms  integer,
  error       text,
  primary key (node_id, checked_at)
);
create index node_checks_checked_at on node_checks (checked_at);

-- Every gateway that reports (by the id in its reports, GATEWAY_ID), whatever its key.
create table gateway_reports (
  gateway_id       text primary key,
  version          text,
  runtime          text,
  first_report_at  timestamptz not null,
  last_report_at   timestamptz not null
);

-- The maintenance job prunes old sessions oldest first.
create index sessions_closed_at on sessions (closed_at) where closed_at is not null;
create index sessions_open_last_seen on sessions (last_seen_at) where closed_at is null;
create index sessions_by_device on sessions (device_id, opened_at);
create index sessions_open_by_gateway on sessions (gateway_id) where closed_at is null;
create index device_usage_last_seen on device_usage (last_seen_at);
