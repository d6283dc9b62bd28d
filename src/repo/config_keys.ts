/**
 * The keys of `modelsync.yaml`, one entry each: schema, what a message says
 * it expects, and its commented line in a new file. `src/repo/config.ts`
 * validates with it and `init` writes the template from it.
 *
 * @example
 * ```ts
 * import { CONFIG_KEYS } from "./config_keys.ts";
 * console.log(CONFIG_KEYS.jobs.expected); // a whole number from 1 up
 * ```
 * @module
 */
import { z } from "zod";
import { CAPABILITY_NAMES } from "../provider/contract.ts";

const DEFAULT_DATA_DIR = "models";

const durationSchema = z.union([z.string(), z.number().nonnegative()]);

/** One `modelsync.yaml` key: its schema, what it expects, and its line in a new file. */
export interface ConfigKeySpec {
  schema: z.ZodType;
  /** For messages: `"jobs" must be a whole number from 1 up`. */
  expected: string;
  /** Written commented out by `init`: an example value and what it does. */
  template: { value: string; comment: string };
}

/**
 * Every key of `modelsync.yaml`. Adding a key is one entry here (options
 * that also have a flag name their key in `SETTINGS` of
 * `src/sync/settings.ts`).
 */
export const CONFIG_KEYS = {
  datastore: {
    schema: z.union([z.string(), z.looseObject({ type: z.string().min(1) })]),
    expected: `a spec string like "filesystem:/path" or a mapping with a non-empty "type"`,
    template: { value: "filesystem:/srv/models", comment: "where the data is shared" },
  },
  dataDir: {
    schema: z.string(),
    expected: `a relative folder name such as "models"`,
    template: { value: DEFAULT_DATA_DIR, comment: "folder holding TYPE/ID/..." },
  },
  exclude: {
    schema: z.array(z.string().min(1)),
    expected: `a list of glob patterns such as ["*.tmp"]`,
    template: { value: "[]", comment: `never synced, e.g. ["*.tmp", "checkpoints/**"]` },
  },
  models: {
    schema: z.array(z.string().min(1)),
    expected: `a list of model refs or globs such as ["vision/*", "@acme/nlp/bert"]`,
    template: {
      value: "[]",
      comment: `what a bare pull brings, e.g. ["vision/*"]; empty: every model`,
    },
  },
  symlinks: {
    schema: z.enum(["store", "follow"]),
    expected: `"store" (links leaving a model stop its push) or "follow" (sync what they point to)`,
    template: {
      value: "store",
      comment: "links leaving a model: store (stop its push) or follow (sync the target)",
    },
  },
  lockTimeout: {
    schema: durationSchema,
    expected: "a duration like 30s, 2m or 500ms",
    template: { value: "60s", comment: "how long to wait for a lock" },
  },
  timeout: {
    schema: durationSchema,
    expected: "a duration like 30s, 2m or 500ms",
    template: { value: "10m", comment: "deadline for a whole run (default: none)" },
  },
  jobs: {
    schema: z.number().int().positive(),
    expected: "a whole number from 1 up",
    template: { value: "8", comment: "parallel transfers (default: what the datastore suggests)" },
  },
  disableCaps: {
    schema: z.array(z.enum(CAPABILITY_NAMES)),
    expected: `a list of capability names (${CAPABILITY_NAMES.join(", ")})`,
    template: { value: "[]", comment: `capabilities forced off, e.g. ["scopedSync"]` },
  },
  holder: {
    schema: z.string().min(1),
    expected: "a non-empty string",
    template: {
      value: "ci-runner",
      comment: "name recorded in locks and commits (default: $USER)",
    },
  },
  packSmallFiles: {
    schema: z.boolean(),
    expected: "true or false",
    template: {
      value: "true",
      comment: "files up to 512 KiB go in 16 MiB packs; false: a blob per file",
    },
  },
  allowDelete: {
    schema: z.boolean(),
    expected: "true or false",
    template: {
      value: "false",
      comment: "push/flush also delete, for everyone, models deleted here (--allow-delete)",
    },
  },
} as const satisfies Record<string, ConfigKeySpec>;

/** A key of `modelsync.yaml`. */
export type ConfigKey = keyof typeof CONFIG_KEYS;
