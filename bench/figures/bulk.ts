/**
 * Figures 3, 4, 7 and the memory half of 6, on one synthetic tree (100,000
 * files of 1 KiB in 1,000 models; quick: 10,000 in 100):
 *
 * - 4: first `push` to an empty filesystem datastore against `cp -a` and
 *   `rclone copy` of the same tree, each into a fresh directory;
 * - 3: no-op `push` against `git status --porcelain` (the tree committed to
 *   git first) and `rclone sync --dry-run` against an identical copy;
 * - 7: first `pull` of every model into an empty repository (a fresh
 *   directory, `init` not timed) from the datastore of the last first push,
 *   against `cp -a` of the tree into a fresh directory;
 * - 6: peak memory of the first push, the first pull and the no-op push.
 *
 * @module
 */
import { join } from "node:path";
import { type BenchContext, interleave } from "../_context.ts";
import { BenchError, cli, expectSummary, run } from "../_run.ts";
import { writeModels } from "../_tree.ts";
import { peerRow, type Row, row } from "../report.ts";

/** Runs figures 3, 4, 7 and the peak memory of 6; returns their rows. */
export async function bulkFigures(ctx: BenchContext, only: Set<string>): Promise<Row[]> {
  const { treeModels, treeFiles, fileSize } = ctx.sizes;
  const total = treeModels * treeFiles;
  const dir = await ctx.fresh("bulk");
  const repo = join(dir, "repo");
  const trash = join(dir, "trash");
  await Deno.mkdir(repo);
  await Deno.mkdir(trash);
  const rcloneConf = join(dir, "rclone.conf");
  await Deno.writeTextFile(rcloneConf, "");
  const rcloneEnv = { RCLONE_CONFIG: rcloneConf };
  ctx.log(`writing ${total} files of ${fileSize} B in ${treeModels} models`);
  const t0 = performance.now();
  await writeModels(join(repo, "models"), { models: treeModels, files: treeFiles, size: fileSize });
  ctx.log(`tree written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const files = `${total.toLocaleString("en-US")} files`;
  const rows: Row[] = [];
  const mem: { first: number[]; noop: number[]; pull: number[] } = {
    first: [],
    noop: [],
    pull: [],
  };

  // Figure 4: first push, cp -a, rclone copy; every one into a fresh target.
  let seq = 0;
  let lastCopy = "";
  /** The datastore of the last first push (what figure 7 pulls from). */
  let pushed = "";
  const firstPush = async (round: number) => {
    const n = ++seq;
    pushed = join(dir, `datastore-${n}`);
    await Deno.rename(join(repo, ".modelsync"), join(trash, `modelsync-${n}`)).catch(() => {});
    // init refuses to switch datastores, so point modelsync.yaml at a new one first.
    await Deno.writeTextFile(
      join(repo, "modelsync.yaml"),
      `datastore: filesystem:${pushed}\n`,
    );
    await cli(["init"], { cwd: repo });
    const r = await cli(["push", "--json"], { cwd: repo, memory: true });
    expectSummary(r, { pushed: treeModels, failed: 0 });
    if (round > 0 && r.maxRssKiB) mem.first.push(r.maxRssKiB / 1024);
    return r.ms / 1000;
  };
  const cp = async () => {
    lastCopy = join(dir, `cp-${++seq}`);
    return (await run(["cp", "-a", join(repo, "models"), lastCopy], { cwd: dir })).ms / 1000;
  };
  const rcloneCopy = async () => {
    const dst = join(dir, `rclone-${++seq}`);
    const r = await run(["rclone", "copy", join(repo, "models"), dst], {
      cwd: dir,
      env: rcloneEnv,
    });
    return r.ms / 1000;
  };
  const want4 = only.has("4") || only.has("3") || only.has("6");
  if (want4) {
    const steps: Record<string, (round: number) => Promise<number>> = { modelsync: firstPush };
    if (ctx.peers.cp && (only.has("4") || only.has("3"))) steps["cp -a"] = cp;
    if (ctx.peers.rclone && only.has("4")) steps["rclone copy"] = rcloneCopy;
    // Quick: no warm-up round (the tree was just written, so it is in the page cache) and at
    // most 2 runs: 100,000s of file creations are the slowest part of a quick run.
    const s = await interleave(ctx, "figure 4", steps, {
      warmup: !ctx.quick,
      runs: ctx.quick ? Math.min(ctx.runs, 2) : ctx.runs,
    });
    if (only.has("4")) {
      rows.push(peerRow({
        figure: "4",
        name: `first push, ${files}`,
        unit: "s",
        samples: s.modelsync,
        peer: "cp -a",
        peerSamples: s["cp -a"],
        target: { max: 1.0, of: "ratio" },
      }, ctx.missing("cp")));
      rows.push(peerRow({
        figure: "4",
        name: `first push, ${files}`,
        unit: "s",
        samples: s.modelsync,
        peer: "rclone copy",
        peerSamples: s["rclone copy"],
        target: { max: 0.5, of: "ratio" },
      }, ctx.missing("rclone")));
    }
  }

  // Figure 3: no-op push against git status and rclone sync --dry-run.
  if (only.has("3") || only.has("6")) {
    const noop = async (round: number) => {
      const r = await cli(["push", "--json"], { cwd: repo, memory: true });
      expectSummary(r, { pushed: 0, failed: 0, conflict: 0 });
      if (round > 0 && r.maxRssKiB) mem.noop.push(r.maxRssKiB / 1024);
      return r.ms / 1000;
    };
    const steps: Record<string, (round: number) => Promise<number>> = { modelsync: noop };
    if (ctx.peers.git && only.has("3")) {
      ctx.log(`committing the tree to git (not timed)`);
      const git = async (args: string[]) => {
        const r = await run(["git", ...args], { cwd: repo, timeoutMs: 1_800_000 });
        // A git that fails prints nothing on stdout: never time that as a clean status.
        if (r.code !== 0) throw new BenchError(`git ${args.join(" ")} failed`, r);
        return r;
      };
      await git(["init", "-q"]);
      // modelsync init lists models/ in .gitignore (git does not track the data); git's peer
      // tracks it, as if it synced it, so its status checks every file.
      await git(["add", "-A"]);
      await git(["add", "-f", "models"]);
      await git([
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@localhost",
        "commit",
        "-q",
        "-m",
        "bench",
      ]);
      steps["git status"] = async () => {
        const r = await git(["status", "--porcelain"]);
        if (r.stdout.trim() !== "") throw new BenchError("found changes in a clean tree", r);
        return r.ms / 1000;
      };
    }
    if (ctx.peers.rclone && lastCopy !== "" && only.has("3")) {
      steps["rclone sync --dry-run"] = async () => {
        const r = await run(["rclone", "sync", "--dry-run", join(repo, "models"), lastCopy], {
          cwd: dir,
          env: rcloneEnv,
        });
        if (/Skipped (copy|delete)/.test(r.stderr)) {
          throw new BenchError("found differences between identical trees", r);
        }
        return r.ms / 1000;
      };
    }
    const s = await interleave(ctx, "figure 3", steps);
    if (only.has("3")) {
      rows.push(peerRow({
        figure: "3",
        name: `no-op push, ${files}`,
        unit: "s",
        samples: s.modelsync,
        peer: "git status --porcelain",
        peerSamples: s["git status"],
        target: { max: 2.0, of: "ratio" },
      }, ctx.missing("git")));
      rows.push(peerRow({
        figure: "3",
        name: `no-op push, ${files}`,
        unit: "s",
        samples: s.modelsync,
        peer: "rclone sync --dry-run",
        peerSamples: s["rclone sync --dry-run"],
        target: { max: 0.2, of: "ratio" },
      }, ctx.missing("rclone") ?? (lastCopy === "" ? "cp -a not installed (no copy)" : null)));
    }
  }

  // Figure 7: first pull into an empty repository against cp -a of the tree.
  if (only.has("7") || only.has("6")) {
    if (pushed === "") {
      ctx.log("figure 7: one first push to pull from (not timed)");
      await firstPush(0);
    }
    const pull = async (round: number) => {
      const dst = join(dir, `pull-${++seq}`);
      await Deno.mkdir(dst);
      await cli(["init", "--datastore", `filesystem:${pushed}`], { cwd: dst });
      const r = await cli(["pull", "--json"], { cwd: dst, memory: true });
      expectSummary(r, { pulled: treeModels, failed: 0 });
      if (round > 0 && r.maxRssKiB) mem.pull.push(r.maxRssKiB / 1024);
      return r.ms / 1000;
    };
    const steps: Record<string, (round: number) => Promise<number>> = { modelsync: pull };
    if (ctx.peers.cp && only.has("7")) steps["cp -a"] = cp;
    // As the first push: every run creates the whole tree, so quick has 2 runs, no warm-up.
    const s = await interleave(ctx, "figure 7", steps, {
      warmup: !ctx.quick,
      runs: ctx.quick ? Math.min(ctx.runs, 2) : ctx.runs,
    });
    if (only.has("7")) {
      rows.push(peerRow({
        figure: "7",
        name: `first pull into an empty repository, ${files}`,
        unit: "s",
        samples: s.modelsync,
        peer: "cp -a",
        peerSamples: s["cp -a"],
        target: { max: 1.5, of: "ratio" },
      }, ctx.missing("cp")));
    }
  }

  if (only.has("6")) {
    const peaks = [
      ["first push", mem.first],
      ["first pull", mem.pull],
      ["no-op push", mem.noop],
    ] as const;
    for (const [what, samples] of peaks) {
      rows.push(
        samples.length === 0 ? peakSkip(what, files) : row({
          figure: "6",
          name: `peak memory, ${what}, ${files}`,
          unit: "MiB",
          samples,
          target: { max: 200, of: "value" },
        }),
      );
    }
  }
  return rows;
}

function peakSkip(what: string, files: string): Row {
  return {
    figure: "6",
    name: `peak memory, ${what}, ${files}`,
    unit: "MiB",
    samples: [],
    median: null,
    target: { max: 200, of: "value" },
    verdict: "SKIP",
    note: "no memory figure from GNU time or /proc",
  };
}
