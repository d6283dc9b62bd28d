/**
 * What the fuzzer feeds, and to which entry point (issue 13, point 5): each
 * target generates one input from a seeded {@linkcode Rng} (a valid value,
 * then mutated), runs it through modelsync's own parser in this process, and
 * says where a CLI case puts it in a repository or datastore and which
 * commands then read it.
 *
 * Property, in process: the parser returns a value that keeps the format's
 * rules (no escaping path, a usable setting), or throws a `ModelsyncError`
 * with a documented exit code and a one-line message; never another
 * exception. A secret in a datastore spec never appears in a message.
 *
 * @module
 */
import { join } from "node:path";
import { stringify as yamlStringify } from "yaml";
import { ModelsyncError, UsageError } from "../src/errors.ts";
import { dataDirProblem, loadConfig } from "../src/repo/config.ts";
import { compileExclude } from "../src/repo/exclude.ts";
import { parseDatastoreSpec, redactSpec } from "../src/repo/datastore_spec.ts";
import { resolveDatastore } from "../src/providers/mod.ts";
import { resolveSettings } from "../src/sync/settings.ts";
import { formatRef, parseGenerationRef, parseModelRef, refProblem } from "../src/model/ref.ts";
import { matchesRefPatterns, refPatternProblem } from "../src/model/ref_pattern.ts";
import { parseRefArg } from "../src/repo/ref_arg.ts";
import {
  makeManifest,
  type Manifest,
  parseManifestText,
  syncablePathProblem,
} from "../src/model/manifest.ts";
import { readBaseSync } from "../src/model/base.ts";
import { hashBytes } from "../src/model/hash.ts";
import { getHead } from "../src/model/commits.ts";
import { parsePruned, walkHistory } from "../src/model/history.ts";
import { headKey, historyKey, prunedKey } from "../src/provider/keys.ts";
import { parseRepoLock, staleReason } from "../src/repo/repo_lock_record.ts";
import { RecordLocks } from "../src/lock/records.ts";
import { describeHolder } from "../src/provider/stale.ts";
import {
  MEMORY_SCOPED_CAPS,
  MemoryLockStore,
  MemoryProvider,
} from "../src/lock/_memory_provider.ts";
import { mutateJson, mutateText, NASTY_STRINGS, nastyValue } from "./_mutate.ts";
import type { Rng } from "./_rng.ts";

/** Exit codes an error may carry (SPEC §6); 1 means a bug. */
export const DOCUMENTED_ERROR_CODES: ReadonlySet<number> = new Set([2, 3, 4, 5, 6, 75, 130]);

/** Planted in every generated spec that holds credentials: it must never be printed. */
export const SECRET = "Fz-S3cr3t-9q";

/** Where a CLI case puts its input (paths relative to the sandbox of `fuzz/_cli.ts`). */
export interface Placement {
  /** Files to write, relative to the sandbox root, or a record directory of the datastore. */
  writes: { path: string; text: string; record?: boolean }[];
  /** The commands to run in the repository, one CLI process each. */
  commands: string[][];
  /** True when the commands may write to the datastore (then it is checked for integrity). */
  writesDatastore?: boolean;
  /** A secret the commands were given: it must appear on neither stdout nor stderr. */
  secret?: string;
}

/** One kind of input. */
export interface Target {
  name: string;
  /** What it is, for the report. */
  what: string;
  /** One input, from the case's own generator. */
  generate(rng: Rng): string;
  /** Runs it through the parser. */
  check(input: string): Promise<Verdict>;
  /** Where a CLI case puts the input, and what it runs. */
  place(input: string, rng: Rng): Placement;
}

const MODEL = { type: "vpc", id: "m1" };
const ME = { holder: "fuzz", host: "fuzz-host", pid: 4242 };
const HEX = "0123456789abcdef";
/** A link entry describes its target: the SHA-256 and size of "a.txt". */
const LINK_SHA = hashBytes(new TextEncoder().encode("a.txt"));

let scratchDir: string | undefined;

/** One temporary directory for the in-process cases that read files; removed at exit. */
async function scratch(): Promise<string> {
  if (scratchDir === undefined) {
    const dir = await Deno.makeTempDir({ prefix: "modelsync-fuzz-" });
    scratchDir = dir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Already gone.
      }
    });
  }
  return scratchDir;
}

/** The problem with an error a parser threw, or undefined when it is a proper one. */
export function errorProblem(err: unknown, secret?: string): string | undefined {
  if (!(err instanceof ModelsyncError)) {
    const e = err as Error;
    return `unhandled ${e?.constructor?.name ?? typeof err}: ${e?.message ?? String(err)}\n${
      e?.stack ?? ""
    }`;
  }
  if (!DOCUMENTED_ERROR_CODES.has(err.exitCode)) return `exit code ${err.exitCode}: ${err.message}`;
  if (err.message.trim() === "") return `${err.name} with an empty message`;
  // The CLI prints the first line (control characters escaped): a second one would be lost.
  if (err.message.includes("\n")) return `${err.name} message of several lines: ${err.message}`;
  if (secret !== undefined && err.message.includes(secret)) {
    return `the secret is in the message: ${err.message}`;
  }
  return undefined;
}

/** What one in-process case did: the parser accepted or refused the input, and what is wrong. */
export interface Verdict {
  accepted: boolean;
  problem?: string;
}

async function guarded(
  run: () => Promise<string | undefined> | string | undefined,
  secret?: string,
): Promise<Verdict> {
  try {
    const problem = await run();
    return problem === undefined ? { accepted: true } : { accepted: true, problem };
  } catch (err) {
    const problem = errorProblem(err, secret);
    return problem === undefined ? { accepted: false } : { accepted: false, problem };
  }
}

function sha(rng: Rng): string {
  return rng.string(64, HEX);
}

function maybeMutateText(rng: Rng, text: string): string {
  return rng.chance(0.3) ? mutateText(rng, text) : text;
}

/** A manifest of vpc/m1 as push writes it: a blob, a packed file, a link, a tombstone at times. */
function seedManifest(rng: Rng, generation = 1 + rng.int(3)): Manifest {
  const pack = sha(rng);
  const files = rng.chance(0.1) ? [] : [
    { path: "a.txt", sha256: sha(rng), size: 5, executable: false },
    { path: "dir/b.bin", sha256: sha(rng), size: 1_000_000, executable: true },
    {
      path: "dir/small.json",
      sha256: sha(rng),
      size: 12,
      executable: false,
      pack: { blob: pack, offset: 0 },
    },
    { path: "link", sha256: LINK_SHA, size: 5, executable: false, link: "a.txt" },
  ];
  const m = makeManifest(MODEL, generation, files, ME);
  return generation > 1
    ? {
      ...m,
      parent: { generation: generation - 1, commit: m.commit.split("").reverse().join("") },
    }
    : m;
}

/** Mutates the text of a record: as JSON while it still parses, else as text. */
function mutateRecordText(rng: Rng, text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return mutateText(rng, text);
  }
  return mutatedJsonText(rng, value);
}

function mutatedJsonText(rng: Rng, value: unknown): string {
  const v = rng.chance(0.85) ? mutateJson(rng, value) : value;
  return maybeMutateText(rng, JSON.stringify(v, null, rng.chance(0.5) ? 2 : undefined));
}

// ---- modelsync.yaml ---------------------------------------------------------

function seedConfig(rng: Rng): Record<string, unknown> {
  const datastore = rng.chance(0.8)
    ? rng.pick<unknown>([
      "filesystem:../datastore",
      "../datastore",
      { type: "filesystem", path: "../datastore" },
    ])
    : rng.pick<unknown>([
      { type: rng.pick(["filesystem", "s3", "nope", ""]), path: rng.pick(NASTY_STRINGS) },
      rng.pick(NASTY_STRINGS),
    ]);
  const c: Record<string, unknown> = { datastore };
  // key: [a good value, a bad one]; each key set now and then, mostly good.
  const optional: [string, () => unknown, () => unknown][] = [
    [
      "dataDir",
      () => rng.pick(["models", "data/models", "./models/"]),
      () => rng.pick(NASTY_STRINGS),
    ],
    [
      "exclude",
      () => rng.pick([["*.tmp"], ["**/x/**", "a?b"], ["{a,b}"], ["[!x]y"]]),
      () => rng.pick([["[a-"], ["{a,b"], ["\\"], [""], ["!x"], [nastyValue(rng)]]),
    ],
    [
      "models",
      () => rng.pick([["vpc/*"], ["@acme/**"], ["vpc/m1"]]),
      () => rng.pick([["../x"], ["[z-a]"], ["vpc/[a-"], [nastyValue(rng)]]),
    ],
    ["symlinks", () => rng.pick(["store", "follow"]), () => rng.pick(["copy", 1])],
    [
      "lockTimeout",
      () => rng.pick(["60s", "1h30m", "0", 5]),
      () => rng.pick([-1, "1x", "9999999999h", 1e308, "1.5s"]),
    ],
    ["timeout", () => rng.pick(["10m", "0s", 86_400]), () => rng.pick(["-5s", "", "P1D"])],
    ["jobs", () => rng.pick([1, 8, 64]), () => rng.pick([0, -3, 2.5, "4", 1e9, null])],
    ["disableCaps", () => rng.pick([["scopedSync"], []]), () => rng.pick([["nope"], "scopedSync"])],
    [
      "holder",
      () => rng.pick(["ci-runner", "me@host"]),
      () => rng.pick(["", "a\nb", "x".repeat(500)]),
    ],
    ["allowDelete", () => rng.chance(0.5), () => rng.pick(["yes", 1])],
    ["packSmallFiles", () => rng.chance(0.5), () => rng.pick(["no", 0])],
  ];
  for (const [k, good, bad] of optional) {
    if (rng.chance(0.3)) c[k] = rng.chance(0.8) ? good() : bad();
  }
  if (rng.chance(0.05)) c.unknownKey = 1;
  return c;
}

const configTarget: Target = {
  name: "config",
  what: "modelsync.yaml",
  generate(rng) {
    const c = seedConfig(rng);
    const text = rng.chance(0.1)
      ? rng.pick([
        "a: &a [*a]",
        `x: &a ["x","x"]\n${
          Array.from(
            { length: 12 },
            (_, i) =>
              `l${i}: &l${i} [*${i === 0 ? "a" : `l${i - 1}`}, *${i === 0 ? "a" : `l${i - 1}`}]`,
          ).join("\n")
        }`,
        "datastore: !!js/function 'x'",
        "- a\n- b",
        "",
        "\u0000",
      ])
      : yamlStringify(c);
    return maybeMutateText(rng, text);
  },
  async check(input) {
    const dir = await scratch();
    {
      await Deno.writeTextFile(join(dir, "modelsync.yaml"), input);
      return await guarded(async () => {
        const config = await loadConfig(dir);
        const bad = dataDirProblem(config.dataDir);
        if (bad !== undefined) return `dataDir ${JSON.stringify(config.dataDir)} accepted: ${bad}`;
        compileExclude(config.exclude);
        for (const p of config.models ?? []) matchesRefPatterns("vpc/m1", [p]);
        resolveSettings({ flags: {}, env: {}, config });
        return undefined;
      });
    }
  },
  place(input) {
    return {
      writes: [{ path: "repo/modelsync.yaml", text: input }],
      commands: [["status"], ["pull"], ["config", "show"]],
    };
  },
};

// ---- datastore specs ---------------------------------------------------------

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * True when the secret sits where a URL keeps credentials: the user info, a
 * query value, the fragment (a mutation may move it into a host, a path or a
 * query key, where nobody would put one).
 */
export function secretInCredentials(spec: string): boolean {
  if (!spec.includes(SECRET)) return false;
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    return false;
  }
  const values = [url.username, url.password, url.hash, ...url.searchParams.values()];
  return values.some((v) => v.includes(SECRET) || safeDecode(v).includes(SECRET));
}

const specTarget: Target = {
  name: "spec",
  what: "datastore specs (--datastore, modelsync.yaml)",
  generate(rng) {
    const host = rng.pick([
      "127.0.0.1:1",
      "localhost:1",
      "[::1]:1",
      "127.0.0.1:99999",
      "",
      "@",
      "a b",
    ]);
    const spec = rng.pick([
      `filesystem:${
        rng.pick(["../datastore", "/nonexistent/x", "", "~", "~/nope", ...NASTY_STRINGS])
      }`,
      `fs:${rng.pick(NASTY_STRINGS)}`,
      `file://${rng.pick(["/tmp/x", "", "relative", "%00"])}`,
      `s3://${rng.pick(["bucket", "B", "a", "x".repeat(70), "bucket..x", ""])}/${
        rng.pick(["p", "", "../p", "//"])
      }` +
      rng.pick([
        "",
        `?endpoint=http://${host}`,
        `?endpoint=${rng.pick(NASTY_STRINGS)}`,
        "?region=",
        "?x=1&x=2",
        "#frag",
      ]),
      `s3://key:${SECRET}@bucket/p?endpoint=http://${host}`,
      `s3://bucket/p?endpoint=http://user:${SECRET}@${host}`,
      `s3://bucket/p?secretAccessKey=${SECRET}`,
      `postgres://u:${SECRET}@${host}/db`,
      `postgresql://${host}/db?password=${SECRET}`,
      `azure://${rng.pick(["container", "C", ""])}/${rng.pick(["p", ""])}?sv=2020&sig=${SECRET}`,
      `module:${rng.pick(["./nope.ts", "npm:", "", "../../etc/passwd", "data:,x"])}`,
      `${rng.pick(["bogus", "x", "S3", "FILESYSTEM", "fs", "file"])}:${rng.pick(NASTY_STRINGS)}`,
      rng.pick(NASTY_STRINGS),
    ]);
    return rng.chance(0.3) ? mutateText(rng, spec) : spec;
  },
  check(input) {
    return guarded(async () => {
      const cfg = parseDatastoreSpec(input, "/nonexistent-base", "--datastore");
      if (secretInCredentials(input) && redactSpec(input).includes(SECRET)) {
        return `redactSpec keeps the secret: ${redactSpec(input)}`;
      }
      await resolveDatastore({ ...cfg }, { origin: "--datastore" });
      return undefined;
    }, secretInCredentials(input) ? SECRET : undefined);
  },
  place(input) {
    return {
      writes: [],
      commands: [["--datastore", input, "--timeout", "5s", "status", "--remote"]],
      ...(secretInCredentials(input) ? { secret: SECRET } : {}),
    };
  },
};

// ---- model refs --------------------------------------------------------------

const refTarget: Target = {
  name: "ref",
  what: "model refs (TYPE/ID, @scope/name/ID, MODEL@N, patterns, paths)",
  generate(rng) {
    const name = () =>
      rng.pick(["vpc", "a", "x.y-z_", "0", "A", "-a", ".a", "a".repeat(64), "a".repeat(65), ""]);
    const id = () => rng.pick(["m1", "M", "a.b", "_x", "z".repeat(128), "z".repeat(129), "..", ""]);
    const ref = rng.pick([
      `${name()}/${id()}`,
      `@${name()}/${name()}/${id()}`,
      `${name()}/${name()}/${id()}`,
      `models/vpc/${id()}`,
      `./models/vpc/m1`,
      `${name()}/${id()}@${rng.pick(["1", "0", "-1", "x", "", "999999999999", "1e3"])}`,
      rng.pick(["vpc/*", "**", "@a/*/x", "vpc/m?", "[a-", "vpc/"]),
      rng.pick(NASTY_STRINGS),
    ]);
    return rng.chance(0.3) ? mutateText(rng, ref) : ref;
  },
  check(input) {
    const parses: (() => string | undefined)[] = [
      () => {
        const ref = parseModelRef(input);
        if (refProblem(formatRef(ref)) !== undefined) {
          return `parsed into invalid ${formatRef(ref)}`;
        }
        if (formatRef(ref) !== input) return `does not round-trip: ${formatRef(ref)}`;
        return undefined;
      },
      () => {
        const { model, generation } = parseGenerationRef(input);
        if (!Number.isSafeInteger(generation) || generation < 1) return `generation ${generation}`;
        return refProblem(formatRef(model));
      },
      () => {
        const why = refPatternProblem(input);
        if (why !== undefined) throw new UsageError(why);
        return undefined;
      },
      () => {
        const ref = parseRefArg(input, { cwd: "/r/models", repoDir: "/r", dataDir: "models" });
        return refProblem(formatRef(ref));
      },
    ];
    return Promise.all(parses.map((p) => guarded(p))).then((vs) => {
      const problems = vs.flatMap((v) => (v.problem === undefined ? [] : [v.problem]));
      return {
        accepted: vs.some((v) => v.accepted),
        ...(problems.length === 0 ? {} : { problem: problems.join("; ") }),
      };
    });
  },
  place(input) {
    return {
      writes: [],
      commands: [["status", input], ["log", input], ["pull", input]],
    };
  },
};

function guardedSync(fn: () => string | undefined): string | undefined {
  try {
    return fn();
  } catch (err) {
    return errorProblem(err);
  }
}

// ---- manifests (heads and history records) ----------------------------------

function checkManifest(m: Manifest): string | undefined {
  for (const f of m.files) {
    const bad = syncablePathProblem(f.path);
    if (bad !== undefined) return `path ${JSON.stringify(f.path)} accepted: ${bad}`;
  }
  if (!Number.isSafeInteger(m.generation) || m.generation < 1) return `generation ${m.generation}`;
  return undefined;
}

const manifestTarget: Target = {
  name: "manifest",
  what: "manifests (a model's head record)",
  generate(rng) {
    return mutatedJsonText(rng, seedManifest(rng));
  },
  check(input) {
    return guarded(() => checkManifest(parseManifestText(input, MODEL, "heads/vpc/m1")));
  },
  place(input) {
    return {
      writes: [{ path: "datastore/heads/vpc/m1", text: input, record: true }],
      commands: [["pull"], ["status", "--remote"], ["log", "vpc/m1"], ["verify"]],
    };
  },
};

/** A chain of three commits as records: the head, history records, maybe a pruned record. */
function seedHistory(rng: Rng): Map<string, string> {
  const records = new Map<string, string>();
  let parent: { generation: number; commit: string } | null = null;
  let last: Manifest | undefined;
  for (let g = 1; g <= 3; g++) {
    const m: Manifest = { ...seedManifest(rng, g), parent };
    records.set(historyKey(MODEL, g, m.commit), JSON.stringify(m));
    parent = { generation: g, commit: m.commit };
    last = m;
  }
  records.set(headKey(MODEL), JSON.stringify(last));
  if (rng.chance(0.3)) {
    records.set(
      prunedKey(MODEL),
      JSON.stringify({
        format: 2,
        model: "vpc/m1",
        oldestKept: {
          generation: 2,
          commit: JSON.parse(records.get(headKey(MODEL))!).parent.commit,
        },
        prunedAt: new Date().toISOString(),
        prunedBy: ME,
      }),
    );
  }
  return records;
}

const historyTarget: Target = {
  name: "history",
  what: "history records and the pruned record (a model's chain of commits)",
  generate(rng) {
    const records = seedHistory(rng);
    const keys = [...records.keys()];
    for (let n = 1 + rng.int(2); n > 0; n--) {
      const k = rng.pick(keys);
      if (rng.chance(0.15)) records.delete(k);
      else records.set(k, mutateRecordText(rng, records.get(k) ?? "null"));
    }
    return JSON.stringify(Object.fromEntries(records));
  },
  check(input) {
    const records = new Map(Object.entries(JSON.parse(input) as Record<string, string>));
    const store = new MemoryLockStore();
    for (const [k, text] of records) {
      store.records.set(k, {
        bytes: new TextEncoder().encode(text),
        version: store.nextVersion(),
        modifiedMs: Date.now(),
      });
    }
    const p = new MemoryProvider(store, MEMORY_SCOPED_CAPS);
    return guarded(async () => {
      const pruned = records.get(prunedKey(MODEL));
      if (pruned !== undefined) {
        const bad = guardedSync(() => {
          parsePruned(new TextEncoder().encode(pruned), MODEL);
          return undefined;
        });
        if (bad !== undefined) return bad;
      }
      const head = await getHead(p, MODEL);
      if (head === null) return undefined;
      const bad = checkManifest(head.manifest);
      if (bad !== undefined) return bad;
      // Documented never to throw for a damaged chain: the end says what is wrong.
      try {
        const walk = await walkHistory(p, MODEL, { head });
        for (const e of walk.entries) {
          const b = checkManifest(e.manifest);
          if (b !== undefined) return b;
        }
      } catch (err) {
        return `walkHistory threw: ${errorProblem(err) ?? (err as Error).message}`;
      }
      return undefined;
    });
  },
  place(input) {
    // The chain replaces the template's: its head, history records and pruned record.
    const records = JSON.parse(input) as Record<string, string>;
    const writes = Object.entries(records)
      .map(([k, text]) => ({ path: `datastore/${k}`, text, record: true }));
    return { writes, commands: [["log", "vpc/m1"], ["verify"], ["restore", "vpc/m1@1"]] };
  },
};

// ---- lock records --------------------------------------------------------------

function seedLock(rng: Rng): Record<string, unknown> {
  const now = Date.now();
  const at = new Date(now - rng.pick([0, 1_000, 40_000, 86_400_000])).toISOString();
  return {
    key: rng.chance(0.9) ? "vpc/m1" : "global",
    holder: "ci",
    host: rng.pick([ME.host, Deno.hostname(), "other"]),
    pid: rng.pick([ME.pid, Deno.pid, 1, 999_999]),
    operation: "push",
    acquiredAt: at,
    renewedAt: at,
    ttlMs: rng.pick([30_000, 1, 86_400_000]),
    nonce: rng.string(32, HEX),
    ...(rng.chance(0.3) ? { repo: "/r" } : {}),
  };
}

const lockTarget: Target = {
  name: "lock",
  what: "lock records (leases/models/TYPE/ID)",
  generate(rng) {
    return mutatedJsonText(rng, seedLock(rng));
  },
  check(input) {
    const store = new MemoryLockStore();
    store.records.set("leases/models/vpc/m1", {
      bytes: new TextEncoder().encode(input),
      version: store.nextVersion(),
      modifiedMs: Date.now() - 1_000,
    });
    const locks = new RecordLocks(new MemoryProvider(store, MEMORY_SCOPED_CAPS), {
      host: ME.host,
      pid: ME.pid,
      skewMarginMs: 5_000,
      caps: MEMORY_SCOPED_CAPS,
    });
    return guarded(async () => {
      const handle = locks.handle({ kind: "model", model: MODEL });
      const seen = await handle.inspect();
      if (seen === null) return "a planted record reads as free";
      describeHolder(seen.record);
      if (!Number.isFinite(seen.ttlLeftMs) || !Number.isFinite(seen.ageMs)) {
        return `ttl left ${seen.ttlLeftMs}, age ${seen.ageMs}`;
      }
      for (const info of await locks.list()) describeHolder(info.record);
      const r = await handle.tryAcquire({
        ...ME,
        holder: "fuzz2",
        operation: "push",
        ttlMs: 30_000,
      });
      if (r.acquired) {
        if (!seen.stale) return "took over a record it judged live";
        await handle.release(r.record.nonce);
      } else if (r.current.stale) {
        return "refused by a record judged stale";
      }
      return undefined;
    });
  },
  place(input) {
    return {
      writes: [
        { path: "datastore/leases/models/vpc/m1", text: input, record: true },
        { path: "repo/models/vpc/m1/fuzz-edit.txt", text: "an edit to push" },
      ],
      commands: [["lock", "status"], ["lock", "status", "--json"], [
        "push",
        "--lock-timeout",
        "1s",
      ]],
      writesDatastore: true,
    };
  },
};

// ---- the repository lock -------------------------------------------------------

const repoLockTarget: Target = {
  name: "repo-lock",
  what: ".modelsync/repo.lock",
  generate(rng) {
    const now = Date.now();
    const at = new Date(now - rng.pick([0, 40_000, 86_400_000])).toISOString();
    return mutatedJsonText(rng, {
      pid: rng.pick([Deno.pid, 1, 999_999]),
      host: rng.pick([Deno.hostname(), "other"]),
      operation: "push",
      startedAt: at,
      renewedAt: at,
      ttlMs: 30_000,
      nonce: rng.string(32, HEX),
    });
  },
  check(input) {
    return guarded(() => {
      const r = parseRepoLock(input);
      const seen = "record" in r
        ? { text: input, mtimeMs: Date.now(), record: r.record }
        : { text: input, mtimeMs: Date.now() - 1_000, problem: r.problem };
      if ("problem" in r && (typeof r.problem !== "string" || r.problem === "")) {
        return "no problem named";
      }
      staleReason(seen, { host: Deno.hostname(), pid: Deno.pid, ours: () => false });
      return undefined;
    });
  },
  place(input) {
    return {
      writes: [
        { path: "repo/.modelsync/repo.lock", text: input },
        { path: "repo/models/vpc/m1/fuzz-edit.txt", text: "an edit to push" },
      ],
      commands: [["status"], ["push", "--lock-timeout", "1s"]],
      writesDatastore: true,
    };
  },
};

// ---- base files ----------------------------------------------------------------

const baseTarget: Target = {
  name: "base",
  what: "base files (.modelsync/base/TYPE/ID.json)",
  generate(rng) {
    const m = seedManifest(rng);
    return mutatedJsonText(rng, {
      format: 1,
      model: "vpc/m1",
      generation: m.generation,
      version: rng.string(12, HEX),
      syncedAtMs: Date.now(),
      files: m.files.map((f) => ({ ...f, mtimeMs: Date.now() - rng.int(10_000) })),
    });
  },
  async check(input) {
    const dir = await scratch();
    {
      await Deno.mkdir(join(dir, ".modelsync/base/vpc"), { recursive: true });
      await Deno.writeTextFile(join(dir, ".modelsync/base/vpc/m1.json"), input);
      return await guarded(() => {
        const base = readBaseSync(dir, MODEL);
        for (const f of base?.files ?? []) {
          const bad = syncablePathProblem(f.path);
          if (bad !== undefined) return `path ${JSON.stringify(f.path)} accepted: ${bad}`;
        }
        return undefined;
      });
    }
  },
  place(input) {
    return {
      writes: [
        { path: "repo/.modelsync/base/vpc/m1.json", text: input },
        { path: "repo/models/vpc/m1/fuzz-edit.txt", text: "an edit to push" },
      ],
      commands: [["status"], ["pull"], ["push", "--lock-timeout", "5s"]],
      writesDatastore: true,
    };
  },
};

/** Every target, in report order. */
export const TARGETS: readonly Target[] = [
  configTarget,
  specTarget,
  refTarget,
  manifestTarget,
  historyTarget,
  lockTarget,
  repoLockTarget,
  baseTarget,
];
