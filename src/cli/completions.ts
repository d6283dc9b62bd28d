/**
 * Shell completion scripts for bash, zsh and fish, generated from the
 * program's commander tree (commands, options, choices), so a new command or
 * option completes without touching this file. Model refs come from the
 * hidden command `modelsync __complete models`, which lists the models of the
 * repository: folders in the data folder and models synced here (their base
 * files). The datastore is not asked: a Tab press never waits on a network
 * or a mount, and needs no credentials. When no ref matches, bash and zsh fall
 * back to file names, so `models/vision/<Tab>` completes folders (refs may be
 * given as paths).
 *
 * @example
 * ```ts
 * import { Command } from "@commander-js/extra-typings";
 * import { completionScript } from "./completions.ts";
 * const program = new Command("modelsync");
 * program.command("push").argument("[models...]");
 * console.log(completionScript("bash", program).includes("complete -o bashdefault")); // true
 * ```
 * @module
 */
import type { CommandUnknownOpts, Option } from "@commander-js/extra-typings";
import { listBaseModels } from "../model/base.ts";
import { formatRef, sortUniqueRefs } from "../model/ref.ts";
import { longFlag, SETTINGS, type SettingSpec } from "../sync/settings.ts";
import { listLocalModels } from "../repo/scan.ts";
import type { Workspace } from "../sync/session.ts";

/** A command as the scripts see it. */
interface Node {
  /** Path from the program: `push`, `lock release`. */
  path: string;
  name: string;
  description: string;
  options: { long: string; short?: string; takesValue: boolean; description: string }[];
  subcommands: string[];
  /** Takes model refs as arguments. */
  models: boolean;
  /** Choices of its first argument (`completions <shell>`). */
  choices: string[];
}

/** Values to offer after an option: commander's choices, or the settings table's. */
function optionValues(o: Option): string[] | undefined {
  if (o.argChoices !== undefined) return [...o.argChoices];
  const spec = (Object.values(SETTINGS) as SettingSpec<unknown>[]).find((s) =>
    longFlag(s).name === o.long
  );
  return spec?.choices === undefined ? undefined : [...spec.choices];
}

function describeOptions(cmd: CommandUnknownOpts): Node["options"] {
  return cmd.options.filter((o) => !o.hidden && o.long !== undefined).map((o) => ({
    long: o.long!,
    ...(o.short === undefined ? {} : { short: o.short }),
    takesValue: o.required || o.optional,
    description: o.description.replace(/\s*\[.*\]$/, ""),
  }));
}

function walk(cmd: CommandUnknownOpts, path: string, out: Node[]): void {
  // Hidden helpers are named `__…` (commander has no public "hidden" getter).
  const visible = cmd.commands.filter((c) => !c.name().startsWith("__"));
  const args = cmd.registeredArguments;
  out.push({
    path,
    name: cmd.name(),
    description: cmd.description(),
    options: describeOptions(cmd),
    subcommands: visible.map((c) => c.name()),
    models: args.some((a) => a.name() === "models" || a.name() === "model"),
    choices: [...(args[0]?.argChoices ?? [])],
  });
  for (const sub of visible) walk(sub, path === "" ? sub.name() : `${path} ${sub.name()}`, out);
}

function allOptions(program: CommandUnknownOpts): Option[] {
  const seen = new Map<string, Option>();
  const visit = (c: CommandUnknownOpts) => {
    for (const o of c.options) if (o.long !== undefined) seen.set(o.long, o);
    for (const s of c.commands) visit(s);
  };
  visit(program);
  return [...seen.values()];
}

const shellWord = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function bashScript(program: CommandUnknownOpts): string {
  const nodes: Node[] = [];
  walk(program, "", nodes);
  const root = nodes[0];
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const options = allOptions(program);
  const valued = options.filter((o) => o.required || o.optional).flatMap((o) =>
    [o.long, o.short].filter((f): f is string => f !== undefined)
  );
  const valueArms = options.flatMap((o) => {
    if (!(o.required || o.optional)) return [];
    const flags = [o.long, o.short].filter((f): f is string => f !== undefined).join("|");
    const values = optionValues(o);
    if (values !== undefined) {
      return [
        `    ${flags}) COMPREPLY=($(compgen -W ${
          shellWord(values.join(" "))
        } -- "$cur")); return ;;`,
      ];
    }
    if (o.long === "--repo") {
      return [`    ${flags}) COMPREPLY=($(compgen -d -- "$cur")); return ;;`];
    }
    return [`    ${flags}) return ;; # a value: the shell's default (file names)`];
  });
  const globals = root.options.flatMap((o) => [o.long, ...(o.short ? [o.short] : [])]);
  const arms = nodes.map((n) => {
    const opts = [...n.options.flatMap((o) => [o.long, ...(o.short ? [o.short] : [])]), ...globals];
    const words = n.subcommands.length > 0 ? n.subcommands : n.choices;
    const body = [
      `      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W ${
        shellWord([...new Set(opts), "--help"].join(" "))
      } -- "$cur")); return; fi`,
      ...(words.length > 0
        ? [`      COMPREPLY=($(compgen -W ${shellWord(words.join(" "))} -- "$cur"))`]
        : []),
      ...(n.models
        ? [
          `      COMPREPLY=($(compgen -W "$("${name}" "\${repo[@]}" __complete models "$cur" 2>/dev/null)" -- "$cur"))`,
        ]
        : []),
    ];
    return `    ${shellWord(n.path)})\n${body.join("\n")}\n      ;;`;
  });
  const groups = nodes.filter((n) => n.subcommands.length > 0).map((n) => n.path);
  return `# ${name} completion for bash. Load it with: source <(${name} completions bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev=""
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local valued=${shellWord(` ${valued.join(" ")} `)}
  local groups=${shellWord(` ${groups.filter((g) => g !== "").join(" ")} `)}
  local path="" word skip=0 i
  local -a repo=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$word" in
      --repo) repo=(--repo "\${COMP_WORDS[i+1]}"); skip=1; continue ;;
      --repo=*) repo=("$word"); continue ;;
      -*) [[ "$valued" == *" $word "* ]] && skip=1; continue ;;
    esac
    if [[ -z "$path" ]]; then path="$word"
    elif [[ "$groups" == *" $path "* ]]; then path="$path $word"
    fi
  done
  case "$prev" in
${valueArms.join("\n")}
  esac
  case "$path" in
${arms.join("\n")}
  esac
}
complete -o bashdefault -o default -F ${fn} ${name}
`;
}

function zshScript(program: CommandUnknownOpts): string {
  const name = program.name();
  // zsh runs the bash function through bashcompinit: one definition of the rules.
  return `#compdef ${name}
# ${name} completion for zsh. Load it with: source <(${name} completions zsh)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }
(( $+functions[complete] )) || { autoload -U +X bashcompinit && bashcompinit; }
${bashScript(program).split("\n").slice(1).join("\n")}`;
}

function fishScript(program: CommandUnknownOpts): string {
  const nodes: Node[] = [];
  walk(program, "", nodes);
  const name = program.name();
  const q = shellWord;
  const lines = [
    `# ${name} completion for fish. Save it as ~/.config/fish/completions/${name}.fish`,
    `complete -c ${name} -f`,
  ];
  const top = nodes.filter((n) => !n.path.includes(" ") && n.path !== "");
  const topNames = top.map((n) => n.name).join(" ");
  for (const n of top) {
    lines.push(
      `complete -c ${name} -n "not __fish_seen_subcommand_from ${topNames}" -a ${q(n.name)} -d ${
        q(n.description)
      }`,
    );
  }
  for (const n of nodes) {
    const cond = n.path === ""
      ? ""
      : ` -n ${q(`__fish_seen_subcommand_from ${n.path.split(" ").at(-1)}`)}`;
    for (const o of n.options) {
      const short = o.short ? ` -s ${o.short.slice(1)}` : "";
      lines.push(
        `complete -c ${name}${cond} -l ${o.long.slice(2)}${short}${o.takesValue ? " -r" : ""} -d ${
          q(o.description)
        }`,
      );
    }
    if (n.path.includes(" ") || n.path === "") continue;
    for (const sub of n.subcommands) {
      lines.push(`complete -c ${name}${cond} -a ${q(sub)}`);
    }
    if (n.choices.length > 0) lines.push(`complete -c ${name}${cond} -a ${q(n.choices.join(" "))}`);
    if (n.models) {
      lines.push(
        `complete -c ${name}${cond} -a "(${name} __complete models (commandline -ct) 2>/dev/null)"`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** The completion script for `shell`, from the program's command tree. */
export function completionScript(shell: string, program: CommandUnknownOpts): string {
  if (shell === "zsh") return zshScript(program);
  if (shell === "fish") return fishScript(program);
  return bashScript(program);
}

/**
 * The models of the workspace's repository for completion: folders in the
 * data folder and models synced here, starting with `prefix`.
 */
export async function completeModels(w: Workspace, prefix: string): Promise<string[]> {
  if (w.repoDir === undefined || w.config === undefined) return [];
  const local = await listLocalModels(w.repoDir, w.config.dataDir);
  const refs = sortUniqueRefs([...local.models, ...await listBaseModels(w.repoDir)]);
  return refs.map(formatRef).filter((r) => r.startsWith(prefix));
}
