/**
 * Logging categories. Configured only in `main.ts`; everything else asks for
 * a logger here. Logs go to stderr; stdout carries only results.
 *
 * @example
 * ```ts
 * import { logger } from "./log.ts";
 * logger("lock").info("waiting for {holder}", { holder: "ci@host" });
 * ```
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";

/** Subsystems that log. */
export type LogArea = "cli" | "lock" | "sync" | "provider" | "repo";

/** The logger of one subsystem: category `["modelsync", area]`. */
export function logger(area: LogArea): Logger {
  return getLogger(["modelsync", area]);
}
