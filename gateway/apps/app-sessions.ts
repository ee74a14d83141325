// The gateway's app sessions, by (device path, client address): a connection joins the open
// one, or the first opens it through validate-app "connect" (concurrent first connections
// share that one request). See app-session.ts for what a session is.
import { randomBytes } from "node:crypto";
import { ReplayCache } from "../../shadowsocks/replay-cache.ts";
import { AppSession, type AppSessionDeps, WS_CLOSE_GOING_AWAY } from "./app-session.ts";
import { DeviceKey } from "./device-key.ts";

export interface AppSessionsOptions extends AppSessionDeps {
  /** GATEWAY_APP_REPLAY_HISTORY: salts remembered (one cache for every device on this gateway). */
  replayHistory: number;
}

export class AppSessions {
  /** Salts of every authenticated app stream, keyed by device path. */
  readonly replay: ReplayCache;
  private readonly open = new Map<string, AppSession>();
  private readonly opening = new Map<string, Promise<AppSession | null>>();

  constructor(private readonly opts: AppSessionsOptions) {
    this.replay = new ReplayCache(opts.replayHistory);
  }

  /** Open app sessions. */
  get size(): number {
    return this.open.size;
  }

  /** Live and reserved connections over all sessions. */
  get connections(): number {
    let n = 0;
    for (const s of this.open.values()) n += s.size;
    return n;
  }

  /**
   * The app session a connection from `remoteAddress` on `path` belongs to, or null when the
   * backend says no (an unknown or revoked path, a device that may not connect, no backend).
   */
  join(path: string, remoteAddress: string, clientVersion?: string): Promise<AppSession | null> {
    const k = `${path}\n${remoteAddress}`;
    const s = this.open.get(k);
    if (s?.isOpen) return Promise.resolve(s);
    let p = this.opening.get(k);
    if (!p) {
      p = this.create(k, path, remoteAddress, clientVersion).finally(() => this.opening.delete(k));
      this.opening.set(k, p);
    }
    return p;
  }

  /** Close every session and its connections (the gateway stops). */
  closeAll(reason: string, wsCode = WS_CLOSE_GOING_AWAY): void {
    for (const s of [...this.open.values()]) s.close(reason, wsCode);
    this.open.clear();
  }

  private async create(k: string, path: string, remoteAddress: string, clientVersion?: string): Promise<AppSession | null> {
    const sessionId = randomBytes(16).toString("hex");
    const log = this.opts.log;
    const check = { purpose: "connect" as const, new_session_id: sessionId, client_version: clientVersion?.slice(0, 64) };
    const r = await this.opts.auth.check(path, check).catch(() => null);
    if (!r || !r.ok) {
      if (r && r.code !== "unknown_device") log.info("app connection refused", { code: r.code });
      return null;
    }
    let key: DeviceKey;
    try {
      key = new DeviceKey(r.app, path);
    } catch (e) {
      log.error("the device's app key cannot be used", { device_id: r.device.id, error: e });
      return null;
    }
    let s: AppSession;
    try {
      s = new AppSession(this.opts, path, remoteAddress, sessionId, r, key);
    } catch (e) {
      log.error("no upstream for the app session", { device_id: r.device.id, error: e });
      return null;
    }
    this.open.set(k, s);
    s.onClosed = () => {
      if (this.open.get(k) === s) this.open.delete(k);
    };
    return s;
  }
}
