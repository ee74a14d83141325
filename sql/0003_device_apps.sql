-- The apps people already have (docs/08-clients.md): each device gets its own identity for
-- the Outline Client and v2ray-plugin clients. `app_secret` is 32 random bytes (base64url);
-- the backend derives the device's secret WebSocket path and its Shadowsocks password from it
-- (backend/app-identity.ts), so one value rotates both. It is stored in clear for the same
-- reason as nodes.password: Shadowsocks needs the key on the server side. `app_path_hash`
-- (sha256 hex of the path) is how validate-app finds a device: one indexed lookup, and no
-- path is stored that a database dump could hand to a prober.

alter table devices
  add column app_secret    text,
  add column app_cipher    text not null default 'chacha20-ietf-poly1305'
    check (app_cipher in ('chacha20-ietf-poly1305', 'aes-256-gcm', 'aes-192-gcm', 'aes-128-gcm')),
  add column app_path_hash text;

-- HMAC-SHA256 (RFC 2104) for keys of at most 64 bytes, in plain SQL: pgcrypto's hmac() is an
-- extension PGlite does not ship. Used only below, to give existing devices their identity
-- exactly as backend/app-identity.ts derives it (a test checks the two agree), then dropped.
create function httvps_hmac_sha256(key bytea, message bytea) returns bytea
language sql immutable strict as $$
  with padded as (select key || decode(repeat('00', 64 - length(key)), 'hex') as k),
  pads as (
    select decode(string_agg(lpad(to_hex(get_byte(k, i) # 54), 2, '0'), '' order by i), 'hex') as ipad,  -- 0x36
           decode(string_agg(lpad(to_hex(get_byte(k, i) # 92), 2, '0'), '' order by i), 'hex') as opad   -- 0x5c
      from padded, generate_series(0, 63) as i
  )
  select sha256(opad || sha256(ipad || message)) from pads
$$;

-- 32 random bytes per device: gen_random_uuid() draws from the server's strong random source
-- (122 random bits each); three of them hashed give 256 bits. Materialized, so each row's
-- bytes are drawn once and the secret and its path hash come from the same draw.
with fresh as materialized (
  select id,
         sha256(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
           as raw
    from devices
)
update devices d
   set app_secret = rtrim(translate(encode(f.raw, 'base64'), '+/', '-_'), '='),
       app_path_hash = encode(sha256(convert_to(
         '/' || left(rtrim(translate(encode(
           httvps_hmac_sha256(f.raw, convert_to('httvps app path v1', 'UTF8')), 'base64'), '+/', '-_'), '='), 22),
         'UTF8')), 'hex')
  from fresh f
 where f.id = d.id;

drop function httvps_hmac_sha256(bytea, bytea);

alter table devices
  alter column app_secret set not null,
  alter column app_path_hash set not null;
create unique index devices_app_path_hash on devices (app_path_hash);
