/**
 * What every part of the stress suite shares: the table of datastores it
 * runs on, a seeded random generator, and direct reads of a datastore's
 * records (to check what the CLI stored without going through the CLI).
 *
 * To run the suite on another kind of datastore, add one entry to
 * {@linkcode DATASTORES}: its name, when it is available, and how to make a
 * fresh, empty datastore (a spec the CLI takes with `--datastore`, and the
 * environment its processes need).
 *
 * @example
 * ```ts ignore
 * import { DATASTORES, Rng } from "./_common.ts";
 * const rng = new Rng(42);
 * for (const d of DATASTORES) console.log(d.name, d.unavailable() ?? "available", rng.int(10));
 * ```
 * @module
 */
import { join } from "node:path";
import { createProvider } from "../src/providers/mod.ts";
import { parseDatastoreSpec } from "../src/repo/datastore_spec.ts";
import { listAllRecords } from "../src/provider/keys.ts";
import type { Provider } from "../src/provider/contract.ts";
import { freshBucket, S3_ENDPOINT, S3_TEST_ENV } from "../src/providers/s3/_test_server.ts";
import { freshSchema, PG_URL, specOf } from "../src/providers/postgres/_test_server.ts";
import {
  AZURE_CONNECTION_STRING,
  AZURE_TEST_ENV,
  freshContainer,
} from "../src/providers/azure/_test_server.ts";

/** A fresh datastore made for one part of a run. */
export interface StoreHandle {
  /** The entry's name, e.g. `filesystem`. */
  name: string;
  /** What the CLI takes as `--datastore` (and `init` writes to modelsync.yaml). */
  spec: string;
  /** Environment every CLI process on this datastore needs (credentials, endpoints). */
  env: Record<string, string>;
}

/** One kind of datastore the suite runs on. */
export interface DatastoreEntry {
  name: string;
  /** Why it cannot run here (e.g. its server is not running), or null when it can. */
  unavailable(): string | null;
  /**
   * A fresh, empty datastore; `root` is a scratch directory of the run,
   * `hint` names what it is for. The repositories' `init` creates its marker.
   */
  create(opts: { root: string; hint: string }): Promise<StoreHandle>;
}

/**
 * Every datastore the suite knows: the filesystem always; S3, PostgreSQL and
 * Azure (Azurite) when their local test servers run (`eval
 * "$(scripts/services.sh start)"` sets `MODELSYNC_TEST_S3_ENDPOINT`,
 * `MODELSYNC_TEST_PG_URL` and `MODELSYNC_TEST_AZURE_CONNECTION_STRING`).
 */
export const DATASTORES: DatastoreEntry[] = [
  {
    name: "filesystem",
    unavailable: () => null,
    async create({ root, hint }) {
      const dir = join(root, `datastore-${hint}`);
      await Deno.mkdir(dir, { recursive: true });
      return { name: "filesystem", spec: `filesystem:${dir}`, env: {} };
    },
  },
  {
    name: "s3",
    unavailable: () =>
      S3_ENDPOINT === null
        ? 'MODELSYNC_TEST_S3_ENDPOINT is not set; start the local S3 server with eval "$(scripts/services.sh start)"'
        : null,
    async create({ root, hint }) {
      const bucket = await freshBucket(`stress-${hint}`);
      const env = {
        ...S3_TEST_ENV,
        // Hermetic: no shared config or credentials files, no metadata lookups.
        AWS_CONFIG_FILE: join(root, "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE: join(root, "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED: "true",
      };
      return { name: "s3", spec: `s3://${bucket}/stress`, env };
    },
  },
  {
    name: "postgres",
    unavailable: () =>
      PG_URL === null
        ? 'MODELSYNC_TEST_PG_URL is not set; start PostgreSQL with eval "$(scripts/services.sh start)"'
        : null,
    // A schema of its own; init creates it and applies the migrations.
    create: ({ hint }) =>
      Promise.resolve({
        name: "postgres",
        spec: specOf(PG_URL!, freshSchema(`stress-${hint}`)),
        env: {},
      }),
  },
  {
    name: "azure",
    unavailable: () =>
      AZURE_CONNECTION_STRING === null
        ? 'MODELSYNC_TEST_AZURE_CONNECTION_STRING is not set; start Azurite with eval "$(scripts/services.sh start)"'
        : null,
    async create({ hint }) {
      const container = await freshContainer(`stress-${hint}`);
      return { name: "azure", spec: `azure://${container}/stress`, env: { ...AZURE_TEST_ENV } };
    },
  },
];

/** The entries of {@linkcode DATASTORES} named in `names` (all when empty). */
export function selectDatastores(names: readonly string[]): DatastoreEntry[] {
  if (names.length === 0) return DATASTORES;
  return names.map((n) => {
    const d = DATASTORES.find((e) => e.name === n);
    if (d === undefined) {
      throw new Error(
        `Unknown datastore ${JSON.stringify(n)}: use ${DATASTORES.map((e) => e.name).join(", ")}.`,
      );
    }
    return d;
  });
}

/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives
 * the same choices. `fork(label)` gives an independent stream, so adding a
 * draw in one part of the suite does not change the choices of another.
 */
export class Rng {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed || 0x9e3779b9;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** One key of `weights`, drawn in proportion to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let r = this.next() * entries.reduce((n, [, w]) => n + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1][0];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }

  /** A hex string of `n` characters. */
  hex(n: number): string {
    let s = "";
    while (s.length < n) s += ((this.next() * 4294967296) >>> 0).toString(16).padStart(8, "0");
    return s.slice(0, n);
  }

  /** An independent generator for one part of the run. */
  fork(label: string): Rng {
    let h = this.seed ^ 0x811c9dc5;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
    return new Rng(h >>> 0);
  }
}

/** A seed for a run that was given none. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** One commit as stored (the fields the checks read). */
export interface StoredCommit {
  key: string;
  model: string;
  generation: number;
  commit: string;
  files: { path: string; sha256: string }[];
  parent: { generation: number; commit: string } | null;
  committedBy: { holder: string; pid: number };
}

/**
 * Direct reads of a datastore through its provider's record primitive, below
 * the sync engine: what the checks compare the CLI's reports with.
 */
export class DirectReader {
  private constructor(readonly provider: Provider) {}

  /** Opens `store` in this process (with its environment applied: S3 and Azure credentials). */
  static async open(store: StoreHandle, baseDir: string): Promise<DirectReader> {
    for (const [k, v] of Object.entries(store.env)) {
      if (k.startsWith("AWS_") || k.startsWith("AZURE_")) Deno.env.set(k, v);
    }
    const p = await createProvider(parseDatastoreSpec(store.spec, baseDir) as { type: string }, {
      callTimeoutMs: 30_000,
      host: Deno.hostname(),
      pid: Deno.pid,
      baseDir,
    });
    await p.open();
    return new DirectReader(p);
  }

  /** Every history record that parses as a commit (`pruned` markers and garbage skipped). */
  async commits(): Promise<StoredCommit[]> {
    const out: StoredCommit[] = [];
    for (const r of await listAllRecords(this.provider, "history/")) {
      const rec = await this.provider.getRecord(r.key);
      if (rec === null) continue;
      try {
        const doc = JSON.parse(new TextDecoder().decode(rec.bytes));
        if (typeof doc.generation !== "number" || !Array.isArray(doc.files)) continue;
        out.push({
          key: r.key,
          model: String(doc.model),
          generation: doc.generation,
          commit: String(doc.commit),
          files: doc.files,
          parent: doc.parent ?? null,
          committedBy: doc.committedBy,
        });
      } catch {
        // Not a commit (a torn or foreign record): verify reports those.
      }
    }
    return out;
  }

  /**
   * The generations reachable from a model's head along the parent links
   * (what `log` lists), newest first; [] when it has no head.
   */
  async reachable(model: string): Promise<number[]> {
    const head = await this.provider.getRecord(`heads/${model}`);
    if (head === null) return [];
    const byCommit = new Map((await this.commits()).map((c) => [c.commit, c]));
    const out: number[] = [];
    let at = byCommit.get(JSON.parse(new TextDecoder().decode(head.bytes)).commit);
    while (at !== undefined) {
      out.push(at.generation);
      at = at.parent === null ? undefined : byCommit.get(at.parent.commit);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.provider.close();
  }
}

/** The state letter of a process from /proc (`T` when stopped), or null when it is gone. */
export async function processState(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // pid (comm) STATE ...: comm may hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}
