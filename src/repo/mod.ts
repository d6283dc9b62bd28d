/**
 * The local repository side: configuration, scanning and change detection,
 * landing downloads, and the repository lock.
 *
 * @example
 * ```ts
 * import { findRepo, loadConfig } from "./mod.ts";
 * const repo = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${repo}/modelsync.yaml`, "datastore: filesystem:/srv/models\n");
 * const config = await loadConfig(await findRepo(repo));
 * console.log(config.dataDir); // models
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
export {
  CONFIG_FILE,
  dataDirProblem,
  type DatastoreConfig,
  DEFAULT_DATA_DIR,
  ensureGitignore,
  findRepo,
  loadConfig,
  type RepoConfig,
  writeConfig,
} from "./config.ts";
export { parseDatastoreSpec } from "./datastore_spec.ts";
export {
  type Changes,
  listLocalModels,
  type LocalFile,
  modelDir,
  RACY_WINDOW_MS,
  scanModel,
  type ScanOptions,
  type ScanResult,
} from "./scan.ts";
export { matchesExclude } from "./exclude.ts";
export { cleanTmp, downloadToTmp, placeFile, removeFile, tmpDir } from "./apply.ts";
export {
  acquireRepoLock,
  CORRUPT_LOCK_TAKEOVER_MS,
  inspectRepoLock,
  type RepoLock,
  repoLockPath,
  type RepoLockRecord,
} from "./repo_lock.ts";
