-- HTTVPS control plane, first schema.
-- Tokens and gateway keys are stored only as sha256 hex digests: they are 256-bit random
-- values, so a fast hash is enough and validation stays one indexed lookup.

create table nodes (
  id           uuid primary key default gen_random_uuid(),
  name         text not null,
  host         text not null,
  port         integer not null check (port between 1 and 65535),
  method       text not null check (method in ('chacha20-ietf-poly1305', 'aes-256-gcm', 'aes-192-gcm', 'aes-128-gcm')),
  password     text not null,
  prefix       text,                -- optional salt prefix from an ss:// key (Outline's `prefix`), as the URL's text
  region       text,
  weight       integer not null default 1 check (weight between 1 and 10000),
  enabled      boolean not null default true,
  api_url      text,                -- Outline management API, when the node has one
  cert_sha256  text,                -- its self-signed certificate's sha256 (hex)
  status       text not null default 'unknown' check (status in ('unknown', 'up', 'down')),
  latency_ms   integer,
  last_error   text,
  checked_at   timestamptz,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);

create table devices (
  id                uuid primary key default gen_random_uuid(),
  name              text not null,
  token_hash        text not null,
  disabled          boolean not null default false,
  revoked_at        timestamptz,
  expires_at        timestamptz,
  max_sessions      integer check (max_sessions > 0),
  data_quota_bytes  bigint check (data_quota_bytes >= 0),
  node_id           uuid references nodes (id) on delete set null,  -- sticky assignment
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now()
);
create index devices_node_id on devices (node_id);
create index devices_created_at on devices (created_at, id);

create table device_usage (
  device_id       uuid primary key references devices (id) on delete cascade,
  bytes_up        bigint not null default 0,   -- device → internet
  bytes_down      bigint not null default 0,   -- internet → device
  sessions_total  bigint not null default 0,
  last_seen_at    timestamptz
);

-- One row per tunnel session, reported by the gateway that holds it.
create table sessions (
  id            text primary key,
  device_id     uuid not null references devices (id) on delete cascade,
  gateway_id    text not null,
  node_id       uuid references nodes (id) on delete set null,
  opened_at     timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  closed_at     timestamptz,
  close_reason  text,
  bytes_up      bigint not null default 0,
  bytes_down    bigint not null default 0
);
create index sessions_open_by_device on sessions (device_id) where closed_at is null;
create index sessions_open_by_node on sessions (node_id) where closed_at is null;

-- Per-gateway credentials issued by the admin API (besides the shared GATEWAY_API_KEY).
create table gateways (
  id          uuid primary key default gen_random_uuid(),
  name        text not null unique,
  key_hash    text not null unique,
  created_at  timestamptz not null default now(),
  revoked_at  timestamptz
);
