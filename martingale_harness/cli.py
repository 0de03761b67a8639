"""The ``martingale`` command line."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from martingale_harness.errors import ConfigError, LogFileError, MartingaleError
from martingale_harness.plugin.host import Contribution, load_plugins
from martingale_harness.project_files import read_yaml, resource_path
from martingale_harness.reporting.runs import read_log, run_from_log
from martingale_harness.scoring.record import BeliefScore
from martingale_harness.scoring.scorer import FAILURE_KEYS

if TYPE_CHECKING:
    from martingale_harness.training.prepare import TrainResult


class UserError(click.ClickException):
    """A MartingaleError as click's one-line error: exit 2 for a file that is not an eval log (as click's own
    bad-path errors), 1 for the rest."""

    def __init__(self, error: MartingaleError) -> None:
        super().__init__(str(error))
        if isinstance(error, LogFileError):
            self.exit_code = 2


class MartingaleGroup(click.Group):
    """The command group: a user's mistake (a MartingaleError) from any command is one line, said here once."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MartingaleError as e:
            raise UserError(e) from None


@click.group(cls=MartingaleGroup)
@click.version_option(package_name="martingale-harness")
def main() -> None:
    """Measure belief entrenchment (the Martingale Score) of language models.

    Evaluations run through inspect: `inspect eval martingale/forecast --model sim/bayesian`.
    """


@main.command("tasks")
def list_tasks() -> None:
    """List the tasks in registry.yaml."""
    registry = read_yaml(resource_path("registry.yaml"))
    for name, path in sorted((registry.get("tasks") or {}).items()):
        click.echo(f"martingale/{name}\t{path}")


@main.command("plugins")
def list_plugins() -> None:
    """List the installed plugins: what each provides, its version and origin, and its status.

    Block plugins by entry-point name with MARTINGALE_DISABLE_PLUGINS=name1,name2.
    """
    host = load_plugins()
    provides: dict[str, list[Contribution]] = {}
    for c in host.contributions():
        provides.setdefault(c.plugin, []).append(c)
    rows = [("PLUGIN", "KIND", "PROVIDES", "VERSION", "ORIGIN", "STATUS")]
    for r in host.records:
        status = r.status if r.error is None else f"{r.status}: {r.error}"
        for c in provides.get(r.name) or [None]:
            rows.append((r.name, c.kind if c else "-", c.name if c else "-", r.version, r.origin, status))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[5])


@main.command("new-plugin")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--kind", type=click.Choice(["extractor", "reward-term"]), default="extractor", show_default=True,
              help="What the plugin contributes.")
def new_plugin_command(name: str, directory: str, kind: str) -> None:
    """Write a ready plugin package DIRECTORY/martingale-NAME: pyproject with the entry point, module, test.

    It installs and runs as is; the plugin guide (docs/plugins.md) says what to change.
    """
    from martingale_harness.plugin.template import write_plugin

    files = write_plugin(name, kind, directory)  # type: ignore[arg-type]
    root = files[0].parent
    for path in files:
        click.echo(f"wrote {path}")
    click.echo(f"next: pip install -e '{root}[test]' && pytest {root} && martingale plugins")


@main.command("grid")
@click.option("--tasks", required=True, help="Comma-separated tasks, e.g. forecast,cmv,openreview.")
@click.option("--models", required=True, help="Comma-separated inspect models, e.g. openai/gpt-4o,sim/bayesian.")
@click.option("--paradigms", default="direct", show_default=True, help="Comma-separated paradigms.")
@click.option("--system-prompts", default="none", show_default=True, help="Comma-separated system prompts.")
@click.option("-T", "task_args", multiple=True, help="name=value given to every task (e.g. extractors=...).")
@click.option("--model-role", "model_roles", multiple=True,
              help="role=model for judge extractors, e.g. grader=openai/gpt-4o-mini (as inspect's --model-role).")
@click.option("--log-dir", type=click.Path(file_okay=False),
              help="The eval set's folder; run the same command again to resume it (not needed with --dry-run).")
@click.option("--limit", type=click.IntRange(min=1), help="Samples per cell (default: all).")
@click.option("--max-tasks", type=click.IntRange(min=1), help="Cells run at the same time (inspect's default).")
@click.option("--retry-attempts", type=click.IntRange(min=0), help="inspect's retries of failed cells (default 10).")
@click.option("--batch", is_flag=True,
              help="Use the providers' batch APIs (about half price, results within 24 h) for models and judges.")
@click.option("--dry-run", is_flag=True,
              help="Run nothing: print samples, calls and tokens per cell and each model's cost (offline stand-ins).")
@click.option("--answer-tokens", type=click.IntRange(min=1), default=400, show_default=True,
              help="With --dry-run: the tokens of each answer assumed (a reasoning model's thinking counts too).")
@click.option("--prices", "prices_file", type=click.Path(exists=True, dir_okay=False),
              help="With --dry-run: YAML of USD per 1M input/output tokens, merged over the shipped list prices.")
def grid_command(tasks: str, models: str, paradigms: str, system_prompts: str, task_args: tuple[str, ...],
                 model_roles: tuple[str, ...], log_dir: str | None, limit: int | None, max_tasks: int | None,
                 retry_attempts: int | None, batch: bool, dry_run: bool, answer_tokens: int,
                 prices_file: str | None) -> None:
    """Run models x tasks x paradigms x system prompts as one inspect eval set (resumable), then report it.

    `martingale report LOG_DIR` writes the leaderboard of the folder. `--dry-run` estimates the grid
    first: the protocol runs once per cell against offline stand-ins, which count calls and tokens.
    """
    from martingale_harness.planning.grid import Grid, run_grid
    from martingale_harness.tasks.config import parse_name_list

    grid = Grid(tasks=parse_name_list(tasks), models=parse_name_list(models),
                paradigms=parse_name_list(paradigms), system_prompts=parse_name_list(system_prompts),
                task_args=_name_values(task_args, "-T"), model_roles=_name_values(model_roles, "--model-role"))
    shape = (f"{grid.cells} cells ({len(grid.tasks)} tasks x {len(grid.paradigms)} paradigms x "
             f"{len(grid.system_prompts)} system prompts x {len(grid.models)} models)")
    if dry_run:
        from martingale_harness.planning.cost import load_prices
        from martingale_harness.planning.estimate import estimate_grid, estimate_tables

        estimate = estimate_grid(grid, load_prices(prices_file), answer_tokens=answer_tokens, limit=limit)
        click.echo(f"dry run of {shape}: calls are counted on offline stand-ins, tokens estimated as "
                   f"characters / 4 with {answer_tokens} tokens per answer; costs at list price")
        click.echo(estimate_tables(estimate))
        return
    if log_dir is None:
        raise click.UsageError("--log-dir is needed to run the grid (or give --dry-run)")
    click.echo(f"grid: {shape} in {log_dir}", err=True)
    options = {k: v for k, v in {"limit": limit, "max_tasks": max_tasks, "retry_attempts": retry_attempts}.items()
               if v is not None}
    success, _ = run_grid(grid, log_dir, batch=batch, **options)
    if not success:
        raise click.ClickException(f"some cells did not finish; run the same command again to resume {log_dir}")
    click.echo(f"done: martingale report {log_dir}", err=True)


def _name_values(items: tuple[str, ...], hint: str) -> dict[str, str]:
    """``name=value`` options as a dict; a malformed one is a usage error naming the option."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not name=value", param_hint=hint)
        values[name.strip()] = value.strip()
    return values


@main.command("rescore")
@click.argument("log_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--extractors", required=True, help="Comma-separated extractor names, e.g. step_judge.")
@click.option("--grader", help="Model for the grader role of judge extractors, e.g. openai/gpt-4o-mini; with "
              "generation settings in inspect's --model-role form: "
              "\"{model: openai/gpt-4o-mini, temperature: 0.3, max_tokens: 512}\" (also model_args: {...}).")
@click.option("--replace", is_flag=True, help="Keep only the new extractors' scores in the new log.")
@click.option("--output", type=click.Path(dir_okay=False), help="New log file (default: beside LOG_FILE).")
def rescore_command(log_file: str, extractors: str, grader: str | None, replace: bool, output: str | None) -> None:
    """Re-extract beliefs from LOG_FILE's transcripts into a new log (the original is untouched).

    Only the grader is loaded, never the log's evaluated model. Progress goes to stderr. Each rescored
    sample is appended to OUTPUT.partial.jsonl as it finishes, so a stopped run keeps its work: the same
    command again resumes, skipping those samples (other settings are refused until the file is
    deleted). The file is removed once the new log is written.
    """
    from martingale_harness.reporting.rescore import rescore

    target = rescore(log_file, extractors, grader=grader, replace=replace, output=output,
                     progress=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {target}")


@main.command("agreement")
@click.argument("log_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--extractors", help="Two or more extractor names, e.g. self_report,step_judge,structured "
              "(default: every extractor of the log).")
def agreement_command(log_file: str, extractors: str | None) -> None:
    """Compare extractors pair by pair on the same transcripts of LOG_FILE: MS of each, correlation,
    failures, and the paired ΔMS with its 95% CI on the samples both read."""
    from martingale_harness.reporting.agreement import pairwise_agreement, pairwise_table

    log = read_log(log_file)
    available = [b.name for b in (log.results.scores if log.results else [])]
    names = [n.strip() for n in extractors.split(",")] if extractors else available
    if len(names) < 2 or len(set(names)) != len(names):
        raise click.ClickException(f"give two or more different extractors; the log has: "
                                   f"{', '.join(available) or 'none'}")
    missing = [n for n in names if n not in available]
    if missing:
        raise click.ClickException(f"{log_file} has no scores for {', '.join(missing)}; it has: {', '.join(available)}")
    samples = [s for s in log.samples or [] if s.scores and all(n in s.scores for n in names)]

    records = {n: [BeliefScore.from_score(s.scores[n], n) for s in samples] for n in names}  # type: ignore[index]
    nan = math.nan
    results = pairwise_agreement({n: [nan if r.prior is None else r.prior for r in records[n]] for n in names},
                                 {n: [nan if r.posterior is None else r.posterior for r in records[n]] for n in names},
                                 cluster=[(s.metadata or {}).get("question_id", s.id) for s in samples])
    click.echo(pairwise_table(results))


@main.command("summary")
@click.argument("log_file", type=click.Path(exists=True, dir_okay=False))
def summary(log_file: str) -> None:
    """Print the Martingale Score of each extractor in an inspect eval LOG_FILE."""
    log = read_log(log_file, header_only=True)
    if log.results is None:
        raise click.ClickException(f"{log_file}: the eval has no results (status: {log.status})")
    full = None
    for block in log.results.scores:
        m = {k: v.value for k, v in block.metrics.items()}
        if "ms_slope" not in m:
            continue

        def fmt(key: str, m: dict[str, float] = m) -> str:
            value = m.get(key, math.nan)
            return "nan" if value is None or math.isnan(value) else f"{value:.4f}"

        click.echo(
            f"{block.name}: MS = {fmt('ms_slope')} (95% CI {fmt('ms_slope_ci_low')} .. {fmt('ms_slope_ci_high')}, "
            f"OLS p = {fmt('ms_slope_p')}), R² = {fmt('ms_r2')}, inertia = {fmt('inertia')}, "
            f"n = {int(m.get('n_pairs', 0))}, failures = {fmt('extraction_failure_rate')}"
        )
        kinds = [(key.removeprefix("failures_"), int(m[key])) for key in FAILURE_KEYS if m.get(key)]
        if kinds:
            click.echo(f"  {block.name}: failed readings by kind: " + ", ".join(f"{k} {n}" for k, n in kinds))
        if math.isnan(m["ms_slope"]):
            full = full or run_from_log(read_log(log_file), Path(log_file))
            click.echo(f"  {block.name}: MS undefined: {full.ms_reason(block.name)}")


@main.command("report")
@click.argument("log_files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output-dir", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Where results_<time>.json/.md, samples_<task>_<time>.jsonl and the plots go.")
@click.option("--plots/--no-plots", default=True, show_default=True,
              help="Write the plots (needs matplotlib: pip install 'martingale-harness[plots]').")
@click.option("--format", "figure_format", type=click.Choice(["png", "pdf", "svg"]), default="png",
              show_default=True, help="Figure file format: PNG, or vector PDF/SVG for a paper.")
@click.option("--all", "all_metrics", is_flag=True,
              help="Every metric in the table (default: MS and its CI, n pairs, failure rate, inertia, Brier "
                   "where labelled); the results JSON always holds them all.")
def report_command(log_files: tuple[str, ...], output_dir: str, plots: bool, figure_format: str,
                   all_metrics: bool) -> None:
    """lm-eval-style results of eval LOG_FILES: table, results JSON, samples JSONL, plots.

    A folder (an eval-set's log dir) stands for its finished logs, and adds the leaderboard: MS with its
    robust CI per model x task (x setting where it varies), * where the classic p < 0.05, failure rate,
    Brier where labels exist, as leaderboard_<time>.md/.json and the |MS|-vs-Brier figure.
    """
    from martingale_harness.reporting.figures import PlotDependencyError, ms_brier_figure, save_figure, write_plots
    from martingale_harness.reporting.leaderboard import leaderboard_rows, write_leaderboard
    from martingale_harness.reporting.results import write_report
    from martingale_harness.reporting.runs import finished_logs, read_run

    folders = [Path(f) for f in log_files if Path(f).is_dir()]
    paths: list[Path] = []
    for given in map(Path, log_files):
        if given.is_dir():
            found, skipped = finished_logs(given)
            for path, status in skipped:
                click.echo(f"skipped {path}: status {status} (eval-set retries or resumes it)", err=True)
            paths += found
        else:
            paths.append(given)
    runs = [read_run(f) for f in paths]
    table, files = write_report(runs, output_dir, plots=False, all_metrics=all_metrics)
    board = write_leaderboard(runs, output_dir, files.stamp) if folders else None
    click.echo(table)
    for path in [files.results, files.table, *files.samples]:
        click.echo(f"wrote {path}")
    if board is not None:
        click.echo(board[0])
        for path in board[1]:
            click.echo(f"wrote {path}")
    if not plots:
        return
    try:  # after the table and files, so a missing matplotlib costs the user only the figures
        for path in write_plots(runs, Path(output_dir), format=figure_format):
            click.echo(f"wrote {path}")
        figure = ms_brier_figure(leaderboard_rows(runs)) if folders else None
        if figure is not None:
            path = Path(output_dir) / f"ms_vs_brier.{figure_format}"
            save_figure(figure, path, figure_format)
            click.echo(f"wrote {path}")
    except PlotDependencyError as e:
        raise click.ClickException(f"{e}, or pass --no-plots to skip the plots") from None


@main.command("compare")
@click.argument("log_a", type=click.Path(exists=True, dir_okay=False))
@click.argument("log_b", type=click.Path(exists=True, dir_okay=False))
@click.option("--extractors", help="Comma-separated extractors to compare (default: all both logs have).")
@click.option("--split-by", help="Also compare within each value of this sample metadata field, e.g. source.")
@click.option("--resamples", type=click.IntRange(min=100), default=1000, show_default=True,
              help="Bootstrap resamples for the CI of the MS difference.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
def compare_command(log_a: str, log_b: str, extractors: str | None, split_by: str | None, resamples: int,
                    seed: int) -> None:
    """Compare run B against run A on the same questions: MS, Brier and inertia, with paired tests."""
    from martingale_harness.reporting.compare import compare_runs, comparison_table, run_label
    from martingale_harness.reporting.runs import read_run, simulated_label_note
    from martingale_harness.tasks.config import parse_name_list

    run_a, run_b = read_run(log_a), read_run(log_b)
    rows = compare_runs(run_a, run_b, extractors=parse_name_list(extractors) if extractors else None,
                        split_by=split_by, resamples=resamples, seed=seed)
    click.echo(f"A: {run_label(run_a)}\nB: {run_label(run_b)}\n")
    click.echo(comparison_table(rows, split_by=split_by))
    note = simulated_label_note([run_a, run_b])
    if note and any(r.n_labelled for r in rows):
        click.echo(f"\nNote: {note}")


@main.command("cost")
@click.argument("log_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--prices", "prices_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML of USD per 1M input/output tokens per model, merged over the shipped list prices.")
def cost_command(log_file: str, prices_file: str | None) -> None:
    """Grader calls, tokens and estimated list-price cost of each judge in LOG_FILE (and the model's own calls)."""
    from martingale_harness.planning.cost import cost_report, cost_table, load_prices

    report = cost_report(read_log(log_file), load_prices(prices_file))
    click.echo(f"{log_file}: {report.samples} samples\n")
    click.echo(cost_table(report))


@main.command("power")
@click.option("--effect", type=float, required=True, help="Martingale Score to detect, e.g. 0.1 (negative allowed).")
@click.option("--sd-prior", type=float, default=0.20, show_default=True, help="SD of the priors across questions.")
@click.option("--sd-delta", type=float, default=0.17, show_default=True,
              help="SD of the updates around the fitted line (a pilot's residual SD).")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Two-sided significance level.")
@click.option("--power", "target", type=float, default=0.80, show_default=True, help="Power to reach.")
@click.option("--draws", type=int, default=1, show_default=True,
              help="Answers per question (inspect's --epochs); they share the question's prior.")
@click.option("--sd-within", type=float, default=0.0, show_default=True,
              help="Draw-to-draw part of --sd-delta (a pilot's sqrt(delta_var_within)); needed with --draws > 1.")
def power_command(effect: float, sd_prior: float, sd_delta: float, alpha: float, target: float, draws: int,
                  sd_within: float) -> None:
    """Questions needed to detect a Martingale Score of EFFECT with the OLS slope t-test (see README, Power)."""
    from martingale_harness.stats.power import PowerInputError, required_questions

    if draws > 1 and sd_within == 0:
        raise click.BadParameter("with --draws above 1, give the draw-to-draw SD of the updates (a pilot run's "
                                 "sqrt(delta_var_within)); without it extra draws cannot change the answer",
                                 param_hint="--sd-within")
    try:
        r = required_questions(effect, sd_prior=sd_prior, sd_delta=sd_delta, alpha=alpha, power=target,
                               draws=draws, sd_within=sd_within)
    except PowerInputError as e:
        raise click.BadParameter(e.message, param_hint=f"--{e.param.replace('_', '-')}") from None
    click.echo(f"questions needed: {r.n}  (to detect MS = {r.effect:g} with power {r.power:g} at alpha = {r.alpha:g})")
    click.echo(f"  achieved power at n = {r.n}: {r.achieved_power:.4f}  (two-sided OLS t-test, df = n - 2)")
    click.echo(f"  normal approximation: n = {r.n_normal_approx:.1f}")
    click.echo(f"  assumed: sd_prior = {r.sd_prior:g} (SD of the priors), "
               f"sd_delta = {r.sd_delta:g} (residual SD of the updates)")
    if r.draws > 1:
        click.echo(f"  {r.draws} draws per question ({r.n * r.draws} answers), sd_within = {r.sd_within:g}: "
                   f"a question's mean update has residual SD {r.sd_per_question:.4g}")


def _training_options(command: Callable[..., None]) -> Callable[..., None]:
    """The arguments ``martingale train`` and ``martingale distill`` share."""
    for option in reversed([
        click.argument("config_file", type=click.Path(exists=True, dir_okay=False)),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config value (dotted key, YAML value), e.g. --set reward.info_coef=0."),
        click.option("--output-dir", type=click.Path(file_okay=False), help="Override the config's output_dir."),
        click.option("--check", is_flag=True, help="Check the config and the data, print the plan, load no model."),
    ]):
        command = option(command)
    return command


def _seed_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        seeds = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give seeds as integers separated by commas, e.g. 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{value!r} repeats a seed")
    return seeds


@main.command("train")
@_training_options
@click.option("--seeds", callback=_seed_list, metavar="N,N,...",
              help="Train once per seed into OUTPUT_DIR/seed-N (the start model is evaluated once and reused), "
                   "then write each seed's report and the seeds report (as `martingale train-report` on the "
                   "seed folders does, without the curves).")
def train_command(config_file: str, overrides: tuple[str, ...], output_dir: str | None, check: bool,
                  seeds: tuple[int, ...] | None) -> None:
    """GRPO/RLOO or expert iteration on a LoRA with the Martingale reward, configured by CONFIG_FILE (YAML; see
    examples/train.yaml)."""
    from martingale_harness.training.config import load_train_config
    from martingale_harness.training.prepare import prepare
    from martingale_harness.training.processes import launched_rank
    from martingale_harness.training.run import seed_configs, train, train_seeds

    config = load_train_config(config_file, [*overrides, *([f"output_dir={output_dir}"] if output_dir else [])])
    if seeds is not None and any(o.split("=", 1)[0].strip() == "seed" for o in overrides):
        raise ConfigError(f"{config_file}: --seeds and --set seed=... both set the training seed; give one")
    prepared = prepare(config)
    if seeds is not None:
        seed_configs(config, seeds)  # every seed's config checked before the first loads a model
    r = config.reward
    # Expert iteration has no KL coefficient (it measures KL per round), so it shows its rounds instead.
    ei = config.expert_iteration
    regulariser = (f"{ei.rounds} round(s) x {ei.samples} samples" if config.algorithm == "expert_iteration"
                   else f"beta = {config.beta:g}")
    main_process = launched_rank() == 0  # under `accelerate launch` only the main process reports
    echo = click.echo if main_process else (lambda *_: None)
    echo(f"{config.algorithm} on {config.base_model}"
         f"{f' + {config.init_adapter}' if config.init_adapter else ''}, {regulariser}; "
         f"martingale/{config.task_name}: {len(prepared.split.train)} training, "
         f"{len(prepared.split.heldout)} held-out samples; reward: ms_coef = {r.ms_coef:g}, "
         f"{r.info_term} x {r.info_coef:g}, format penalty {r.format_penalty:g}, extractor {r.extractor}")
    if seeds is not None:
        echo(f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), one after the other, into "
             f"{config.output_dir}/seed-N")
    if check:
        return
    if seeds is None:
        result = train(config)
        if main_process:
            _report_training(result.adapter_dir, result.metrics_file, result.evaluation)
        return

    def report(seed: int, result: TrainResult) -> None:
        if main_process:
            echo(f"seed {seed}:")
            _report_training(result.adapter_dir, result.metrics_file, result.evaluation)

    results = train_seeds(config, seeds, on_result=report)
    if main_process:
        from martingale_harness.training.seeds_report import write_seeds_report
        from martingale_harness.training.train_report import write_train_report

        for result in results:  # each seed's own report, as train-report writes it
            write_train_report(result.output_dir, None, plots=False)
        # this call's runs only: seed folders of an earlier call in the same folder are not part of it
        text, files = write_seeds_report([r.output_dir for r in results], Path(config.output_dir) / "report")
        echo(text)
        for path in files:
            echo(f"wrote {path}")


@main.command("distill")
@_training_options
def distill_command(config_file: str, overrides: tuple[str, ...], output_dir: str | None, check: bool) -> None:
    """SFT a LoRA on an entrenched teacher's transcripts (a model organism), configured by CONFIG_FILE (YAML)."""
    from martingale_harness.training.config import load_distill_config
    from martingale_harness.training.distill import distill, prepare

    config = load_distill_config(config_file, [*overrides, *([f"output_dir={output_dir}"] if output_dir else [])])
    split = prepare(config)
    click.echo(f"distill {config.teacher.model} {config.teacher.model_args or ''} into a LoRA on "
               f"{config.base_model}; martingale/{config.task_name}: {len(split.train)} training, "
               f"{len(split.heldout)} held-out samples")
    if check:
        return
    result = distill(config)
    ms = ", ".join(_fmt(m.get("ms_slope")) for m in result.teacher_metrics)
    click.echo(f"teacher MS on the training questions: {ms}; "
               f"{result.examples} SFT examples ({result.teacher_samples_left_out} teacher samples unreadable)")
    _report_training(result.adapter_dir, result.output_dir / "metrics.jsonl", result.evaluation)


@main.command("train-report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--output-dir", type=click.Path(file_okay=False),
              help="Where to write (default: RUN_DIR/report; for several runs, their common folder's report/).")
@click.option("--plots/--no-plots", default=True, show_default=True,
              help="Write training_curves.png (needs matplotlib: pip install 'martingale-harness[plots]').")
def train_report_command(run_dirs: tuple[str, ...], output_dir: str | None, plots: bool) -> None:
    """Why a `martingale train` run in RUN_DIR did or did not move MS: summary and training curves.

    Several runs (or the folder of `martingale train --seeds`): each run's report, then the seeds report:
    held-out MS, paired ΔMS, inertia and readable rate per seed, their mean ± SD, and whether the effect
    survives the seeds."""
    import os

    from martingale_harness.training.seeds_report import seed_run_dirs, write_seeds_report
    from martingale_harness.training.train_report import write_train_report

    dirs = seed_run_dirs(list(run_dirs))
    if len(dirs) == 1 and (Path(run_dirs[0]) / "metrics.jsonl").is_file():
        text, files = write_train_report(dirs[0], output_dir, plots=plots)
        click.echo(text)
        for path in files:
            click.echo(f"wrote {path}")
        return
    for run in dirs:
        _, files = write_train_report(run, None, plots=plots)
        click.echo(f"{run}: wrote {', '.join(str(f) for f in files)}")
    where = Path(output_dir) if output_dir else Path(os.path.commonpath([d.resolve() for d in dirs])) / "report"
    text, files = write_seeds_report(dirs, where)
    click.echo(text)
    for path in files:
        click.echo(f"wrote {path}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _report_training(adapter_dir: Path, metrics_file: Path, evaluation: dict[str, Any] | None) -> None:
    click.echo(f"wrote {adapter_dir} (model card: README.md) and {metrics_file}")
    if not evaluation:
        return
    for name in ("start", "trained"):
        run = evaluation.get(name)
        if run is None:  # evaluation.start: false
            continue
        m = run["metrics"]
        click.echo(f"held-out {name}: {run['model']}: MS = {_fmt(m.get('ms_slope'))} "
                   f"[{_fmt(m.get('ms_slope_ci_low'))}, {_fmt(m.get('ms_slope_ci_high'))}], "
                   f"Brier = {_fmt(m.get('brier_posterior'))}, inertia = {_fmt(m.get('inertia'))}, "
                   f"failures = {_fmt(m.get('extraction_failure_rate'))}"
                   + (f", bayes_mae = {_fmt(m['bayes_mae'])} [{_fmt(m.get('bayes_mae_ci_low'))}, "
                      f"{_fmt(m.get('bayes_mae_ci_high'))}], update_ratio = {_fmt(m.get('update_ratio'))}"
                      if "bayes_mae" in m else "")
                   + f"  ({run['log']})")


if __name__ == "__main__":  # `accelerate launch -m martingale_harness.cli train ...`
    main()
