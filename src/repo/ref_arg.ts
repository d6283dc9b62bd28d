/**
 * Model arguments on the command line: a ref (`vision/resnet`), or the
 * model's folder as a path (`models/vision/resnet`, `./resnet/` from inside
 * `models/vision`), so that the shell's folder completion works.
 *
 * @example
 * ```ts
 * import { parseRefArg } from "./ref_arg.ts";
 * const where = { cwd: "/repo", repoDir: "/repo", dataDir: "models" };
 * console.log(parseRefArg("models/vision/resnet/", where)); // { type: "vision", id: "resnet" }
 * ```
 * @module
 */
import path from "node:path";
import { UsageError } from "../errors.ts";
import { type ModelRef, parseModelRef, refProblem } from "../model/ref.ts";

/** Where arguments are read: the working directory and, inside a repository, its data folder. */
export interface RefArgContext {
  cwd: string;
  repoDir?: string;
  dataDir?: string;
}

/**
 * Parses one model argument. A valid ref (trailing slashes dropped) is
 * taken as a ref; otherwise the argument is read as a path, relative to the
 * working directory and then to the repository, that must name a model's
 * folder in the data folder. Anything else is a {@linkcode UsageError}.
 */
export function parseRefArg(text: string, where: RefArgContext): ModelRef {
  const trimmed = text.length > 1 ? text.replace(/\/+$/, "") : text;
  if (refProblem(trimmed) === undefined) return parseModelRef(trimmed);
  if (where.repoDir !== undefined && where.dataDir !== undefined && trimmed !== "") {
    const data = path.resolve(where.repoDir, where.dataDir);
    for (const base of [where.cwd, where.repoDir]) {
      const rel = path.relative(data, path.resolve(base, trimmed));
      if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) continue;
      const ref = rel.split(path.sep).join("/");
      if (refProblem(ref) === undefined) return parseModelRef(ref);
    }
    if (/^(\.{1,2}\/|\/)/.test(trimmed) || trimmed.startsWith(`${where.dataDir}/`)) {
      throw new UsageError(
        `Invalid model ${JSON.stringify(text)}: the path does not name a model folder ` +
          `${where.dataDir}/TYPE/ID (or ${where.dataDir}/@scope/name/ID) of this repository.`,
      );
    }
  }
  return parseModelRef(trimmed); // throws, naming the problem
}

/** Parses every model argument (see {@linkcode parseRefArg}). */
export function parseRefArgs(args: readonly string[], where: RefArgContext): ModelRef[] {
  return args.map((a) => parseRefArg(a, where));
}
