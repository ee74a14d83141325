// The command line of `npm run bench` (bench/run.mjs): the options, their defaults and --help.
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** The outline ciphers a run may measure, with the short names row ids use. */
export const CIPHER_SHORT = { "chacha20-ietf-poly1305": "chacha", "aes-256-gcm": "aes256" };

export const HELP = `usage: node bench/run.mjs [options]      (npm run bench -- [options])

  --only LIST        rows to run, comma-separated groups or row ids (default: all)
                     groups: raw, ss, plugin, vless, direct, direct-pad, h2, outline, idle, tls,
                             early, apps, storm, workers, small, validate, footprint
                     aliases: peers = raw,ss,plugin,vless;
                              httvps = direct,direct-pad,h2,outline,idle,tls,early,storm,workers,
                                       validate,footprint
                     row ids: raw, ss-chacha, ss-aes256, plugin-mux0, plugin-mux1, vless,
                              direct/bun, h2/node, outline-chacha/node, idle/deno, floor/deno,
                              tls/node, apps-direct-mux0/node, apps-outline-mux1/bun, …
                     (h2: direct mode over the HTTP/2 transport, on the runtimes whose
                     gateway serves it — Node and Deno, not Bun; floor: the runtime's TLS +
                     WebSocket alone holding idle connections, in group idle; tls: what
                     node:tls alone moves on each runtime; apps: ss-local + ss-v2ray-plugin,
                     mux=0 and mux=1, against an HTTVPS gateway's device path in direct and
                     outline mode, held against plugin-mux0 / plugin-mux1: --only plugin,apps;
                     direct-pad: the direct row with padding on (every other HTTVPS row runs
                     httvps connect --no-padding), its cost beside direct; early: time to the
                     first byte of the first request on a fresh session without and with early
                     data, bench/first-byte.ts;
                     storm: bench/reconnect-storm.mjs after the rounds and outside --budget (at
                     most 20 min), 10,000 devices (--quick 2,000) reconnecting at once, 1 and 2
                     GATEWAY_WORKERS, on PostgreSQL;
                     workers: direct-w2/<runtime>, direct mode with GATEWAY_WORKERS=2;
                     validate: bench/validate-device.mjs after the rounds (at most 5 min), the
                     backend on PostgreSQL under wrk, 10 s per runtime (--quick 5 s); needs wrk
                     (installed with the peers) and PostgreSQL at BENCH_DATABASE_URL;
                     footprint: bench/backend-footprint.mjs after the rounds (at most 10 min),
                     the backend on PGlite: first start, RSS after start and under 10,000
                     sessions' usage reports;
                     small: many small requests, a browser's page load — 200 GETs of 1–60 KB
                     (a fixed seeded list) 24 at a time, each on a new SOCKS5 connection (one
                     curl --parallel, Connection: close), every body's size checked; wall time
                     of the batch, best round; rows small/direct-<runtime>, small/plugin-mux0,
                     small/plugin-mux1, small/vless, small/raw (curl alone: the load
                     generator's floor); target: HTTVPS ≤ 0.8× the fastest peer)
                     The report ends with issue 17's targets (items 1–9) met / missed with their
                     ratios (bench/lib/targets.mjs), and names the items the run did not measure.
  --runtimes LIST    HTTVPS runtimes (default bun,node,deno)
  --ciphers LIST     outline ciphers (default chacha20-ietf-poly1305,aes-256-gcm)
  --quick            small sizes: 32 MiB down, 16 MiB up, 8 × 4 MiB, 10 TTFB, 200/1000 sessions
  --down MiB         single-stream download (default 256)
  --up MiB           single-stream upload (default 128)
  --par MiB          per stream of the 8-stream download (default 32)
  --streams N        streams of the parallel download (default 8)
  --ttfb N           sequential new connections for TTFB (default 50)
  --rounds N         rounds over all rows, the best counts (default up to 3 as the budget
                     allows, --quick 1)
  --sessions LIST    idle sessions held open, cumulative steps (default 1000,10000)
  --bulk N           sessions of bulk/<runtime> (group idle): N idle sessions, then N that each
                     download 4 MiB (--quick 2) through one stream and stay open; KiB per
                     session of each (default 500, --quick 200)
  --cpu-prof ROW     run that Node row's gateway and client under node --cpu-prof and print the
                     top self-time functions (e.g. --cpu-prof outline-chacha/node)
  --no-install       do not apt-get install missing peers
  --budget SECONDS   no round starts that would not end before this; everything is killed
                     at it (default 900)
  --wait-quiet S     first wait up to S seconds (not counted in the budget) until no other work
                     keeps the CPUs busy (Linux PSI: some avg10 < 15 %); default 0
  --out FILE         where the JSON goes (default bench/results/<date>.json for a full run,
                     <date>-subset.json otherwise)

examples:
  npm run bench                                          # everything, ~40 minutes on 2 cores
  npm run bench -- --only validate,footprint,storm --quick --runtimes node  # the after-the-rounds groups
  npm run bench -- --only httvps --runtimes bun --quick  # iterate on the hot path
  npm run bench -- --only plugin-mux0,outline --runtimes node --cpu-prof outline-chacha/node
  npm run bench -- --only plugin,apps --quick              # the apps' rows beside their peers
  npm run bench -- --only small --quick --runtimes node    # many small requests, HTTVPS vs its peers`;

/** The options of one run; `--help` prints HELP and exits, anything wrong throws. */
export function parseOptions(argv) {
  const o = {
    only: null,
    runtimes: ["bun", "node", "deno"],
    ciphers: ["chacha20-ietf-poly1305", "aes-256-gcm"],
    quick: false,
    install: true,
    budget: 900,
    cpuProf: null,
    out: null,
  };
  const sizes = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a}: expected a positive number`);
      return v;
    };
    if (a === "--help" || a === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (a === "--only") {
      o.only = new Set(
        val().split(",").flatMap((
          s,
        ) => (s === "peers"
          ? ["raw", "ss", "plugin", "vless"]
          : s === "httvps"
          ? ["direct", "direct-pad", "h2", "outline", "idle", "tls", "early", "storm", "workers", "validate", "footprint"]
          : [s])
        ),
      );
    } else if (a === "--runtimes") o.runtimes = val().split(",");
    else if (a === "--ciphers") o.ciphers = val().split(",");
    else if (a === "--quick") o.quick = true;
    else if (a === "--no-install") o.install = false;
    else if (a === "--budget") o.budget = num();
    else if (a === "--cpu-prof") o.cpuProf = val();
    else if (a === "--out") o.out = val();
    else if (a === "--wait-quiet") o.waitQuiet = num();
    else if (a === "--down") sizes.down = num() * MiB;
    else if (a === "--up") sizes.up = num() * MiB;
    else if (a === "--par") sizes.par = num() * MiB;
    else if (a === "--streams") sizes.streams = num();
    else if (a === "--ttfb") sizes.ttfb = num();
    else if (a === "--rounds") sizes.rounds = num();
    else if (a === "--sessions") sizes.sessions = val().split(",").map(Number);
    else if (a === "--bulk") sizes.bulk = num();
    else throw new Error(`unknown option ${a} (see --help)`);
  }
  for (const rt of o.runtimes) if (!["bun", "node", "deno"].includes(rt)) throw new Error(`--runtimes: unknown runtime ${rt}`);
  for (const c of o.ciphers) {
    if (!CIPHER_SHORT[c]) throw new Error(`--ciphers: expected chacha20-ietf-poly1305 or aes-256-gcm, got ${c}`);
  }
  const base = o.quick
    ? {
      down: 32 * MiB,
      up: 16 * MiB,
      par: 4 * MiB,
      streams: 8,
      ttfb: 10,
      sessions: [200, 1000],
      rounds: 1,
      bulk: 200,
      bulkMiB: 2,
    }
    : {
      down: 256 * MiB,
      up: 128 * MiB,
      par: 32 * MiB,
      streams: 8,
      ttfb: 50,
      sessions: [1000, 10000],
      rounds: 3,
      bulk: 500,
      bulkMiB: 4,
    };
  o.sizes = { ...base, ...sizes };
  o.sizes.warm = Math.min(16 * MiB, o.sizes.down);
  // Per session of bulk/<rt>: past every buffer's high-water mark (the 256 KiB window, the
  // socket's 1 MiB), many times over.
  o.sizes.bulkBytes = o.sizes.bulkMiB * MiB;
  return o;
}

/** Whether a row (its group or its id) is among those --only asked for. */
export const selected = (opts, group, id) => !opts.only || opts.only.has(group) || opts.only.has(id);

/** `--name value` of a standalone bench script (validate-device, backend-footprint), else `dflt`. */
export function argValue(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
