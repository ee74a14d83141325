// A device's own Shadowsocks key at the gateway (validate-app's `app`), derived once per app
// session: the master key, the provider, the marker for our own salts, the UDP codec. The
// secret itself is not kept here, and never logged.
import type { AppKey } from "../../protocol/control-plane.ts";
import { StreamError } from "../../protocol/errors.ts";
import { AeadDecryptor, AeadEncryptor } from "../../shadowsocks/aead-stream.ts";
import { type AeadProvider, type CipherSpec, TAG_LEN } from "../../shadowsocks/aead.ts";
import { cipherSpec, providerFor } from "../../shadowsocks/ciphers.ts";
import { evpBytesToKey } from "../../shadowsocks/kdf.ts";
import { ServerSaltMarker } from "../../shadowsocks/server-salt.ts";
import { UdpCodec } from "../../shadowsocks/udp.ts";

export class DeviceKey {
  readonly spec: CipherSpec;
  readonly provider: AeadProvider;
  private readonly masterKey: Uint8Array;
  private readonly marker: ServerSaltMarker;
  private codec: UdpCodec | undefined;

  /** `keyId` names the key in the replay cache (the device's path): salts are remembered per key. */
  constructor(app: AppKey, readonly keyId: string) {
    this.spec = cipherSpec(app.cipher);
    this.provider = providerFor(this.spec);
    this.masterKey = evpBytesToKey(app.secret, this.spec.keyLen);
    this.marker = new ServerSaltMarker(app.secret);
  }

  /** Bytes a stream needs before firstBlockAuthenticates can answer: the salt and the first length block. */
  get firstBlockBytes(): number {
    return this.spec.saltLen + 2 + TAG_LEN;
  }

  /** Whether a stream's first bytes (at least firstBlockBytes) open with a length block sealed under this key. */
  firstBlockAuthenticates(first: Uint8Array): boolean {
    const r = new AeadDecryptor(this.spec, this.masterKey, this.provider).push(first.subarray(0, this.firstBlockBytes));
    return !(r instanceof StreamError);
  }

  decryptor(): AeadDecryptor {
    return new AeadDecryptor(this.spec, this.masterKey, this.provider);
  }

  /** The server's direction of a stream, under a fresh salt marked as ours (a reflected stream is then refused). */
  encryptor(): AeadEncryptor {
    return new AeadEncryptor(this.spec, this.masterKey, {
      salt: this.marker.makeSalt(this.spec.saltLen),
      provider: this.provider,
    });
  }

  /** Whether a client salt is one of ours: the client is replaying our own stream back (Outline's ERR_REPLAY_SERVER). */
  isServerSalt(salt: Uint8Array): boolean {
    return this.marker.isServerSalt(salt);
  }

  get udp(): UdpCodec {
    return (this.codec ??= new UdpCodec(this.spec.method, this.masterKey, this.provider));
  }
}
