/**
 * Model references: `TYPE/ID`, where TYPE is `name` or `@scope/name`.
 *
 * @example
 * ```ts
 * import { formatRef, parseModelRef } from "./ref.ts";
 * const ref = parseModelRef("@acme/vpc/m1");
 * console.log(ref.type, ref.id, formatRef(ref)); // @acme/vpc m1 @acme/vpc/m1
 * ```
 * @module
 */
import { UsageError } from "../errors.ts";

/** One model: its type (`name` or `@scope/name`) and its id. */
export interface ModelRef {
  readonly type: string;
  readonly id: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** True when `s` is a valid type name or scope name segment. */
export function isValidName(s: string): boolean {
  return NAME.test(s) && s !== "." && s !== "..";
}

/** True when `s` is a valid model id. */
export function isValidId(s: string): boolean {
  return ID.test(s);
}

/** Explains why `text` is not a model ref, or returns undefined when it is one. */
export function refProblem(text: string): string | undefined {
  if (text.length === 0) return "it is empty";
  if (!/^[\x21-\x7e]+$/.test(text)) return "it contains non-ASCII, space or control characters";
  const parts = text.split("/");
  if (parts.some((p) => p === "")) return "it has an empty segment";
  if (parts.some((p) => p === "." || p === "..")) return "it has a '.' or '..' segment";
  if (parts.length < 2) return "it has no ID (expected TYPE/ID)";
  const id = parts[parts.length - 1];
  const typeParts = parts.slice(0, -1);
  if (!isValidId(id)) return `its ID "${id}" must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}`;
  if (typeParts.length === 1) {
    if (typeParts[0].startsWith("@")) return "a scoped TYPE needs a name: @scope/name/ID";
    if (!isValidName(typeParts[0])) {
      return `its TYPE "${typeParts[0]}" must match [a-z0-9][a-z0-9._-]{0,63}`;
    }
    return undefined;
  }
  if (typeParts.length === 2) {
    const [scope, name] = typeParts;
    if (!scope.startsWith("@")) {
      return "it has too many segments (expected TYPE/ID or @scope/name/ID)";
    }
    if (!isValidName(scope.slice(1))) {
      return `its scope "${scope}" must be @ followed by [a-z0-9][a-z0-9._-]{0,63}`;
    }
    if (!isValidName(name)) return `its TYPE name "${name}" must match [a-z0-9][a-z0-9._-]{0,63}`;
    return undefined;
  }
  return "it has too many segments (expected TYPE/ID or @scope/name/ID)";
}

/**
 * Parses `TYPE/ID`, right-anchored: the last segment is the ID.
 * Throws a {@linkcode UsageError} (exit 2) naming the problem.
 */
export function parseModelRef(text: string): ModelRef {
  const problem = refProblem(text);
  if (problem !== undefined) {
    throw new UsageError(
      `Invalid model ref ${
        JSON.stringify(text)
      }: ${problem}. Use TYPE/ID or @scope/name/ID, e.g. vpc/m1.`,
    );
  }
  const i = text.lastIndexOf("/");
  return { type: text.slice(0, i), id: text.slice(i + 1) };
}

/** Prints a ref as `type/id`. */
export function formatRef(ref: ModelRef): string {
  return `${ref.type}/${ref.id}`;
}

/** Orders refs by their printed form (code-unit order, stable across hosts). */
export function compareRefs(a: ModelRef, b: ModelRef): number {
  const x = formatRef(a);
  const y = formatRef(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Sorts refs and drops duplicates. */
export function sortUniqueRefs(refs: Iterable<ModelRef>): ModelRef[] {
  const byKey = new Map<string, ModelRef>();
  for (const r of refs) byKey.set(formatRef(r), { type: r.type, id: r.id });
  return [...byKey.values()].sort(compareRefs);
}

/**
 * Parses `TYPE/ID@N` (a model at generation N, as `modelsync log` lists
 * them). Throws a {@linkcode UsageError} (exit 2) naming the problem.
 *
 * @example
 * ```ts
 * import { parseGenerationRef } from "./ref.ts";
 * const { model, generation } = parseGenerationRef("@acme/vpc/m1@3");
 * console.log(model.type, model.id, generation); // @acme/vpc m1 3
 * ```
 */
export function parseGenerationRef(text: string): { model: ModelRef; generation: number } {
  const at = text.lastIndexOf("@");
  const n = at > text.lastIndexOf("/") ? text.slice(at + 1) : "";
  if (!/^[1-9][0-9]{0,11}$/.test(n)) {
    throw new UsageError(
      `Invalid generation ref ${
        JSON.stringify(text)
      }: expected MODEL@N with N a generation from "modelsync log MODEL", e.g. vpc/m1@3.`,
    );
  }
  return { model: parseModelRef(text.slice(0, at)), generation: Number(n) };
}
