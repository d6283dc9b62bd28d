/**
 * Help texts beyond commander's: the options of the settings table with
 * their environment variable, `modelsync.yaml` key and default, an Examples
 * section per command, and where exit codes are documented.
 *
 * @module
 */
import { type CommandUnknownOpts, Option } from "@commander-js/extra-typings";
import { SETTINGS, type SettingSpec } from "../sync/settings.ts";

/** The exit codes of SPEC §6, for the end of every help page. */
export const EXIT_CODES_HELP = [
  "Exit codes: 0 ok, 1 unexpected, 2 usage or config, 3 not found, 4 conflict,",
  "  5 partial failure, 6 datastore, 10 changes (status --exit-code), 75 lock timeout,",
  `  130 interrupted. README.md, "Exit codes", explains each.`,
].join("\n");

/** Examples, by command path (`lock status`). */
const EXAMPLES: Record<string, string[]> = {
  "": [
    "modelsync init --datastore filesystem:/srv/models",
    "modelsync status",
    "modelsync push vision/resnet",
    "modelsync pull",
    "modelsync flush --json --timeout 10m      # in CI",
  ],
  init: [
    "modelsync init --datastore filesystem:/srv/models",
    `modelsync init --datastore "s3://models/team?endpoint=https://minio.internal:9000"`,
    `modelsync init --datastore "postgres://app@db.internal:5432/models?schema=team"  # password: PGPASSWORD or ~/.pgpass`,
    "modelsync init --datastore azure://models/team   # AZURE_STORAGE_CONNECTION_STRING set",
    "modelsync --repo ../other init --datastore /srv/models --no-gitignore",
  ],
  status: [
    "modelsync status                 # offline: local changes, file by file",
    "modelsync status --remote        # also what the datastore has",
    "modelsync status --exit-code || echo 'something to push'",
    "modelsync status models/vision/resnet/",
  ],
  push: [
    "modelsync push                   # every model with local changes",
    "modelsync push vision/resnet @acme/nlp/bert",
    "modelsync -q push && echo pushed",
  ],
  pull: [
    "modelsync pull                   # every model (or those matching models: in modelsync.yaml)",
    "modelsync pull vision/resnet",
    "modelsync pull --theirs vision/resnet",
  ],
  flush: [
    "modelsync flush --json --timeout 10m",
    "MODELSYNC_PROGRESS=json modelsync flush",
  ],
  caps: ["modelsync caps", "modelsync caps --probe", "modelsync --disable-cap scopedSync caps"],
  lock: ["modelsync lock status", "modelsync lock release --force vision/resnet"],
  "lock status": ["modelsync lock status", "modelsync lock status --json"],
  "lock release": [
    "modelsync lock release --force vision/resnet",
    "modelsync lock release --force --global",
  ],
  config: ["modelsync config show"],
  "config show": ["modelsync config show", "modelsync --jobs 4 config show --json"],
  completions: [
    "source <(modelsync completions bash)           # in ~/.bashrc",
    "modelsync completions zsh > ~/.zfunc/_modelsync",
    "modelsync completions fish > ~/.config/fish/completions/modelsync.fish",
  ],
  version: ["modelsync version", "modelsync --version"],
  log: ["modelsync log vision/resnet", "modelsync log -n 5 --json models/vision/resnet/"],
  restore: [
    "modelsync restore vision/resnet@3 && modelsync push vision/resnet",
    "modelsync restore --force vision/resnet@3   # saves local changes first",
  ],
  verify: ["modelsync verify", "modelsync verify --read-data vision/resnet"],
  gc: [
    "modelsync gc --dry-run --keep 10",
    "modelsync gc --keep-within 30d",
    "modelsync gc --grace 1h",
  ],
  migrate: ["modelsync migrate    # once, after upgrading from a format-1 datastore"],
};

/** The help line of a setting: its text, default, environment variable and file key. */
export function settingHelp(spec: SettingSpec<unknown>): string {
  const notes = [`default: ${spec.defaultText}`];
  if (spec.env !== undefined && spec.env.length > 0) notes.push(`env ${spec.env.join(", ")}`);
  if (spec.config !== undefined) notes.push(`modelsync.yaml: ${spec.config}`);
  return `${spec.help} [${notes.join("; ")}]`;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A commander option for a setting. */
export function settingOption(spec: SettingSpec<unknown>): Option {
  const option = new Option(spec.flags, settingHelp(spec));
  if (spec.repeatable) option.argParser(collect);
  return option;
}

/**
 * Adds the settings table's options: global ones to `program`, command
 * ones (`commands: [...]`) to those subcommands.
 */
export function addSettingOptions(program: CommandUnknownOpts): void {
  for (const spec of Object.values(SETTINGS) as SettingSpec<unknown>[]) {
    if (spec.commands === undefined) {
      program.addOption(settingOption(spec));
      continue;
    }
    for (const name of spec.commands) {
      const sub = program.commands.find((c) => c.name() === name);
      if (sub === undefined) throw new Error(`settings table names unknown command ${name}`);
      sub.addOption(settingOption(spec));
    }
  }
}

/** Adds Examples and the exit-code note to every command's help, recursively. */
export function addHelpSections(cmd: CommandUnknownOpts, path = ""): void {
  const examples = EXAMPLES[path];
  const text = [
    ...(examples === undefined ? [] : ["", "Examples:", ...examples.map((e) => `  $ ${e}`)]),
    "",
    EXIT_CODES_HELP,
  ].join("\n");
  cmd.addHelpText("after", text);
  for (const sub of cmd.commands) {
    addHelpSections(sub, path === "" ? sub.name() : `${path} ${sub.name()}`);
  }
}
