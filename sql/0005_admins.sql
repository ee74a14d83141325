-- Named admin accounts, their signed-in sessions and the audit log (docs/10-console.md).
-- ADMIN_TOKEN stays the owner's credential; these are the people beside it.

create table admins (
  id                uuid primary key default gen_random_uuid(),
  name              text not null,
  role              text not null check (role in ('owner', 'operator')),
  -- scrypt, with its parameters and salt: "scrypt$N$r$p$salt$hash" (backend/passwords.ts)
  password_hash     text not null,
  -- an operator that sees and manages only the devices it created (the reseller case)
  own_devices_only  boolean not null default false,
  -- the most devices it may have (not revoked) at once; null: no cap
  max_devices       integer check (max_devices >= 0),
  disabled_at       timestamptz,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now()
);
create unique index admins_name on admins (lower(name));

-- A sign-in's session. The token is a 256-bit random value shown once (the API's bearer, or
-- the console's cookie) and stored as its sha256 like every other credential here. admin_id
-- is null for a session opened with ADMIN_TOKEN.
create table admin_sessions (
  token_hash    text primary key,
  admin_id      uuid references admins (id) on delete cascade,
  created_at    timestamptz not null,
  last_used_at  timestamptz not null,
  expires_at    timestamptz not null,   -- absolute: created_at + ADMIN_SESSION_MAX
  address       text,
  user_agent    text
);
create index admin_sessions_admin on admin_sessions (admin_id);
create index admin_sessions_expires on admin_sessions (expires_at);

-- Who created a device: an admin account, or null (ADMIN_TOKEN, or before accounts existed).
alter table devices add column created_by uuid references admins (id) on delete set null;
create index devices_created_by on devices (created_by, created_at, id);

-- Every state-changing admin action, and every sign-in, successful or not.
create table audit_log (
  id           bigint generated always as identity primary key,
  at           timestamptz not null,
  actor_type   text not null check (actor_type in ('token', 'admin', 'anonymous')),
  actor_id     uuid,            -- the admin account, when there is one (no foreign key: the log outlives it)
  actor_name   text not null,   -- its name then; "admin-token" for ADMIN_TOKEN
  action       text not null,   -- "device.update", "auth.sign_in_failed", … (docs/10-console.md)
  target_type  text,
  target_id    text,
  address      text,            -- the client's address as the backend saw it
  detail       jsonb
);
create index audit_log_at on audit_log (at);
create index audit_log_actor on audit_log (actor_id, id);
create index audit_log_target on audit_log (target_id, id);
-- Failed sign-ins in a window, per account and per address: the sign-in rate limit reads these.
create index audit_log_sign_in_failures_by_name on audit_log (lower(target_id), at) where action = 'auth.sign_in_failed';
create index audit_log_sign_in_failures_by_address on audit_log (address, at) where action = 'auth.sign_in_failed';
