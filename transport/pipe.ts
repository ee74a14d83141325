// Joining two byte streams: bytes both ways with backpressure (a full writer pauses the other
// side's reader until drain), FIN passed on as half-close, and an abort on either side aborts
// the other. The client's proxies join each accepted connection to its tunnel stream here, and
// the gateway each app stream (gateway/apps/) to its upstream.
import { Code } from "../protocol/errors.ts";
import { type Duplex, StreamError } from "./stream.ts";

export interface PipeResult {
  /** Why the tunnel side ended, when it ended abnormally. */
  remoteError?: StreamError;
  /** Why the local side ended, when it ended abnormally. */
  localError?: StreamError;
}

/**
 * Pipe `local` (an accepted socket) and `remote` (a tunnel stream) into each other. Resolves
 * once both are closed. Neither may have been started yet.
 */
export function pipeDuplex(local: Duplex, remote: Duplex): Promise<PipeResult> {
  let localClosed = false;
  let remoteClosed = false;
  const result: PipeResult = {};
  return new Promise<PipeResult>((resolve) => {
    const settle = () => {
      if (localClosed && remoteClosed) resolve(result);
    };
    remote.start({
      data(chunk) {
        if (!local.write(chunk)) remote.pause();
      },
      end() {
        local.closeWrite();
      },
      drain() {
        local.resume();
      },
      close(err) {
        remoteClosed = true;
        if (err) result.remoteError = err;
        if (!localClosed) {
          if (err) local.close(err);
          else {
            // A normal end: let queued bytes reach the app, and keep reading so its FIN
            // (which closes the socket) is seen.
            local.closeWrite();
            local.resume();
          }
        }
        settle();
      },
    });
    local.start({
      data(chunk) {
        // The tunnel side is gone for good: like TCP, more data from the app is answered with a reset.
        if (remoteClosed) return local.close(new StreamError(Code.cancelled, "the tunnel stream is closed"));
        if (!remote.write(chunk)) local.pause();
      },
      end() {
        if (!remoteClosed) remote.closeWrite();
      },
      drain() {
        remote.resume();
      },
      close(err) {
        localClosed = true;
        if (err) result.localError = err;
        // The app went away: tell the gateway with `cancelled` rather than a local socket code.
        if (!remoteClosed) {
          remote.close(err ? new StreamError(Code.cancelled, `the local connection ended: ${err.code}`) : undefined);
        }
        settle();
      },
    });
  });
}
