"""What a grid will cost before it runs (``martingale grid --dry-run``): samples, calls, tokens, dollars.

No second implementation of the protocol: every (task, paradigm, system prompt) cell is run once,
offline, with stand-ins, and the calls they receive are counted with
:func:`~martingale_harness.planning.cost.cost_report`.

* The evaluated model's stand-in is ``sim/bayesian -M answer_chars=N`` (``N = 4 × answer_tokens``):
  it answers every request, beliefs and debate turns alike, with ``answer_tokens`` tokens (the side
  probes get their short replies: a word, a JSON object), so later prompts carry earlier answers at
  that length, as they would with a real model. Calls per sample do not depend on what a model
  answers (the protocol's sequence is fixed by the paradigm, the evidence, ``rounds``,
  ``prior_samples`` and the probes the extractors need: Yes/No, structured), so they are exact,
  unless samples fail or hit limits; tokens are an estimate.
* Judges get ``sim/judge`` for every model role, which replies in the judge's format, so the count
  has no retries. The judge's prompts hold the stand-in's answers, so their size follows
  ``answer_tokens`` too; judge output is the JSON list a judge is asked for.
* Tokens are characters / 4 (:data:`CHARS_PER_TOKEN`, the usual figure for English text with GPT-style
  tokenizers; no tokenizer is downloaded). Each call's input counts all messages it sends.

The cells are the same for every model of the grid, so one stand-in run prices all models: a model
costs its cells' calls at its list price (``prices.yaml`` merged with ``--prices``), and the judges'
calls are priced at their role's model once per evaluated model. A price that is not known is
"unknown", never 0. The batch figure is half the list price, the discount of the providers inspect's
``--batch`` supports (OpenAI, Anthropic, Google, Together AI, Grok); other providers have no batch figure.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from inspect_ai.event import ModelEvent
from inspect_ai.log import EvalLog, read_eval_log

from martingale_harness.planning.cost import Price, cost_report, format_cost, price_of
from martingale_harness.planning.grid import Grid, grid_tasks

CHARS_PER_TOKEN = 4
DEFAULT_ANSWER_TOKENS = 400
BATCH_PROVIDERS = ("openai", "anthropic", "google", "together", "grok")
BATCH_DISCOUNT = 0.5
STAND_IN_MODEL = "sim/bayesian"
STAND_IN_JUDGE = "sim/judge"


def estimated_tokens(event: ModelEvent) -> tuple[int, int]:
    """(input, output) tokens of a call as characters / :data:`CHARS_PER_TOKEN`, rounded up."""
    sent = sum(len(m.text) for m in event.input)
    return math.ceil(sent / CHARS_PER_TOKEN), math.ceil(len(event.output.completion) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Calls:
    """Model calls and their tokens."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Calls) -> Calls:
        return Calls(self.calls + other.calls, self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens)

    def times(self, n: int) -> Calls:
        return Calls(self.calls * n, self.input_tokens * n, self.output_tokens * n)

    def cost(self, price: Price | None) -> float | None:
        """USD at ``price``; None when the price is unknown."""
        if price is None:
            return None
        return (self.input_tokens * price.input + self.output_tokens * price.output) / 1_000_000


@dataclass(frozen=True)
class CellEstimate:
    """One (task, paradigm, system prompt) cell, for one model, as the stand-in run counted it."""

    task: str
    paradigm: str
    system_prompt: str
    samples: int
    model: Calls
    """The evaluated model's calls (debate clone, prior repeats and probes, structured ones included)."""
    max_model_calls: int
    """The most calls one sample made: its sequential steps, each one batch round in batch mode."""
    judges: dict[str, Calls]
    """Calls per model role (``grader``), over all extractors that use it."""

    def per_sample(self, calls: Calls) -> float:
        return calls.calls / self.samples if self.samples else math.nan


@dataclass(frozen=True)
class ModelEstimate:
    """What one model of the grid costs: as the evaluated model, or in a judge role for all of them."""

    model: str
    role: str
    """``evaluated``, or the model role (``grader``)."""
    samples: int
    calls: Calls
    price: Price | None

    @property
    def cost(self) -> float | None:
        return self.calls.cost(self.price)

    @property
    def batch_cost(self) -> float | None:
        """The cost with inspect's ``--batch``; None for providers without batch support or a price."""
        if self.price is None or self.model.split("/", 1)[0] not in BATCH_PROVIDERS:
            return None
        return BATCH_DISCOUNT * (self.cost or 0.0)


@dataclass(frozen=True)
class GridEstimate:
    """The dry run of a grid: its cells (per model) and the cost of each model."""

    grid: Grid
    answer_tokens: int
    cells: list[CellEstimate]
    rows: list[ModelEstimate]

    @property
    def total_cost(self) -> float | None:
        """All models and judges at list price; None when any price is unknown."""
        costs = [r.cost for r in self.rows]
        return None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None))


def estimate_grid(grid: Grid, prices: Mapping[str, Price], answer_tokens: int = DEFAULT_ANSWER_TOKENS,
                  limit: int | None = None) -> GridEstimate:
    """Run every cell of ``grid`` once with the stand-ins (offline, no API call) and price every model."""
    from inspect_ai import eval as inspect_eval

    if answer_tokens < 1:
        raise ValueError(f"answer_tokens must be at least 1, got {answer_tokens}")
    stand_in = dataclasses.replace(grid, models=(STAND_IN_MODEL,),
                                   model_roles={role: STAND_IN_JUDGE for role in grid.model_roles})
    tasks = grid_tasks(stand_in)
    with tempfile.TemporaryDirectory(prefix="martingale-dry-run-") as log_dir:
        logs = inspect_eval(tasks, model=STAND_IN_MODEL,
                            model_args={"answer_chars": CHARS_PER_TOKEN * answer_tokens},
                            model_roles=dict(stand_in.model_roles) or None, limit=limit, log_dir=log_dir,
                            display="none", log_samples=True, score_display=False)
        # the logs' samples load lazily from the files, so they are read before the folder goes
        cells = [_cell(names, log) for names, log in zip(_cell_names(grid), logs, strict=True)]
    samples = sum(c.samples for c in cells)
    evaluated = sum((c.model for c in cells), Calls())
    rows = [ModelEstimate(m, "evaluated", samples, evaluated, price_of(m, prices)) for m in grid.models]
    for role, name in grid.model_roles.items():
        judged = sum((c.judges.get(role, Calls()) for c in cells), Calls())
        rows.append(ModelEstimate(name, role, samples * len(grid.models), judged.times(len(grid.models)),
                                  price_of(name, prices)))
    return GridEstimate(grid, answer_tokens, cells, rows)


def _cell(names: tuple[str, str, str], log: EvalLog) -> CellEstimate:
    """The calls of one stand-in log, the evaluated model's apart from each model role's."""
    if log.status != "success":
        raise RuntimeError(f"the dry run of {' / '.join(names)} failed: {log.error}")
    # long texts are stored once as attachments; the token count needs them resolved
    report = cost_report(read_eval_log(log.location, resolve_attachments=True), prices={}, tokens=estimated_tokens)
    model = sum((Calls(t.calls, t.input_tokens, t.output_tokens) for t in report.evaluated), Calls())
    judges: dict[str, Calls] = {}
    for t in report.judges:
        judges[t.role] = judges.get(t.role, Calls()) + Calls(t.calls, t.input_tokens, t.output_tokens)
    return CellEstimate(*names, samples=report.samples, model=model,
                        max_model_calls=max((t.max_calls_per_sample for t in report.evaluated), default=0),
                        judges=judges)


def _cell_names(grid: Grid) -> list[tuple[str, str, str]]:
    """(task, paradigm, system prompt) of each cell, in :func:`grid_tasks` order."""
    return [(t, p, s) for t in grid.tasks for p in grid.paradigms for s in grid.system_prompts]


def estimate_tables(estimate: GridEstimate) -> str:
    """Markdown: the calls of each cell (per model), then each model's tokens and cost."""
    from pytablewriter import MarkdownTableWriter
    from pytablewriter.typehint import String

    roles = list(estimate.grid.model_roles)
    cell_headers = ["Task", "Paradigm", "System prompt", "Samples", "Calls/sample", "Max calls/sample",
                    *[f"{r} calls/sample" for r in roles], "Input tokens", "Output tokens",
                    *[f"{r} tokens" for r in roles]]
    cell_rows = [[c.task, c.paradigm, c.system_prompt, str(c.samples), f"{c.per_sample(c.model):.2f}",
                  str(c.max_model_calls), *[f"{c.per_sample(c.judges.get(r, Calls())):.2f}" for r in roles],
                  f"{c.model.input_tokens:,}", f"{c.model.output_tokens:,}",
                  *[f"{c.judges.get(r, Calls()).input_tokens + c.judges.get(r, Calls()).output_tokens:,}"
                    for r in roles]]
                 for c in estimate.cells]
    model_headers = ["Model", "Role", "Samples", "Calls", "Input tokens", "Output tokens", "Cost (USD, list)",
                     "Cost (USD, --batch)"]
    model_rows = [[r.model, r.role, f"{r.samples:,}", f"{r.calls.calls:,}", f"{r.calls.input_tokens:,}",
                   f"{r.calls.output_tokens:,}", format_cost(r.cost),
                   format_cost(r.batch_cost) if r.batch_cost is not None else "-"] for r in estimate.rows]
    model_rows.append(["**total**", "", "", f"{sum(r.calls.calls for r in estimate.rows):,}", "", "",
                       format_cost(estimate.total_cost), ""])
    out = []
    for headers, matrix in ((cell_headers, cell_rows), (model_headers, model_rows)):
        writer = MarkdownTableWriter()
        writer.headers = headers
        writer.value_matrix = matrix
        writer.type_hints = [String] * len(headers)
        out.append(writer.dumps())
    return "\n".join(out)
