-- Per-device Outline access keys. For a node with a management API (api_url + cert_sha256)
-- the backend creates one access key per device at the device's first assignment to that
-- node; the gateway then dials with the device's own key, so Outline's per-key metrics
-- and data limits apply to that device alone. The password is stored in clear for the
-- same reason as nodes.password: the gateway needs it to dial.

create table outline_keys (
  device_id         uuid not null references devices (id) on delete cascade,
  node_id           uuid not null references nodes (id) on delete cascade,
  key_id            text not null,      -- the access key's id on that Outline server
  port              integer not null check (port between 1 and 65535),
  method            text not null check (method in ('chacha20-ietf-poly1305', 'aes-256-gcm', 'aes-192-gcm', 'aes-128-gcm')),
  password          text not null,
  -- The data limit last set on the key (null: none). Differs from devices.data_quota_bytes
  -- while a change still has to reach the server; the sync loop retries until it does.
  data_limit_bytes  bigint check (data_limit_bytes >= 0),
  created_at        timestamptz not null default now(),
  primary key (device_id, node_id)
);
create index outline_keys_node_id on outline_keys (node_id);

-- The access key a node registered from its management API uses for itself (health
-- checks, and the fallback when a per-device key cannot be created); deleted with the node.
alter table nodes add column outline_key_id text;
