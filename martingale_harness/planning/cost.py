"""What the judges of an eval cost: grader calls and tokens per extractor, and their dollar price.

Every model call of a sample is a ``ModelEvent`` in ``sample.events``. A judge's calls carry the
model role (``role == "grader"``) and sit inside the scorer span of the extractor that made them, so
calls are grouped by (extractor, role, model); calls of the evaluated model (no role) form their own
row, for context. Tokens are the provider's own counts (``output.usage``).

A call answered from inspect's model cache (``cache == "read"``) made no request, so it is counted
but not billed. Billed tokens are priced at the grader model's list price from ``prices.yaml``
(shipped with the package, merged with a user file); provider prompt-caching discounts are not
applied, so a figure is an upper bound at list price. A model without a price has cost "unknown",
never 0, and so does any total that includes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from inspect_ai.event import ModelEvent, SpanBeginEvent
from inspect_ai.log import EvalLog

from martingale_harness.errors import ConfigError
from martingale_harness.project_files import read_yaml

DEFAULT_PRICES = Path(__file__).resolve().parent / "prices.yaml"
EVALUATED_MODEL = "(evaluated model)"
UNATTRIBUTED = "(outside any scorer)"
UNKNOWN = "unknown"
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclass(frozen=True)
class Price:
    """USD per 1M input and per 1M output tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class CallTally:
    """The calls of one (extractor, role, model) over an eval log."""

    extractor: str
    role: str
    model: str
    samples: int
    """Samples in the log: the denominator of the per-sample figures."""
    calls: int
    cached_calls: int
    max_calls_per_sample: int
    input_tokens: int
    output_tokens: int
    billed_input_tokens: int
    billed_output_tokens: int
    cost: float | None
    """USD at list price for the billed tokens; None when the model's price is unknown."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def calls_per_sample(self) -> float:
        return self.calls / self.samples if self.samples else math.nan

    @property
    def tokens_per_sample(self) -> float:
        return self.total_tokens / self.samples if self.samples else math.nan


@dataclass(frozen=True)
class CostReport:
    """Per-extractor judge tallies, the evaluated model's own tally, and the judges' total."""

    log: str
    samples: int
    judges: list[CallTally]
    evaluated: list[CallTally]

    @property
    def judge_calls(self) -> int:
        return sum(t.calls for t in self.judges)

    @property
    def judge_tokens(self) -> int:
        return sum(t.total_tokens for t in self.judges)

    @property
    def judge_cost(self) -> float | None:
        """Total judge cost in USD; None when some judge's price is unknown."""
        costs = [t.cost for t in self.judges]
        return None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None))


def _parse_prices(data: Mapping[str, object], source: Path) -> dict[str, Price]:
    prices: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise ConfigError(f"{source}: {model}: expected {{input: USD per 1M tokens, output: USD per 1M tokens}}")
        values = []
        for key in ("input", "output"):
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{source}: {model}.{key} must be a non-negative number (USD per 1M tokens), "
                                  f"got {value!r}")
            values.append(float(value))
        prices[str(model)] = Price(*values)
    return prices


def load_prices(user_file: str | Path | None = None) -> dict[str, Price]:
    """The shipped price table, with ``user_file`` (same format) merged over it model by model."""
    prices = _parse_prices(read_yaml(DEFAULT_PRICES), DEFAULT_PRICES)
    if user_file is not None:
        path = Path(user_file)
        prices.update(_parse_prices(read_yaml(path), path))
    return prices


def price_of(model: str, prices: Mapping[str, Price]) -> Price | None:
    """``model``'s price: its own entry, else that of its undated name (``...-2024-07-18``); None if unknown."""
    for name in (model, _SNAPSHOT.sub("", model)):
        if name in prices:
            return prices[name]
    return None


def _cost(price: Price | None, input_tokens: int, output_tokens: int) -> float | None:
    if price is None:
        return None
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def _scorer_of(span_id: str | None, parents: dict[str, str | None], scorers: dict[str, str]) -> str | None:
    """The name of the scorer span enclosing ``span_id`` (None for calls outside scoring)."""
    seen: set[str] = set()
    while span_id is not None and span_id not in seen:
        if span_id in scorers:
            return scorers[span_id]
        seen.add(span_id)
        span_id = parents.get(span_id)
    return None


def usage_tokens(event: ModelEvent) -> tuple[int, int]:
    """(input, output) tokens of a call as the provider counted them (``output.usage``; 0 without one)."""
    usage = event.output.usage
    return (usage.input_tokens, usage.output_tokens) if usage else (0, 0)


def cost_report(log: EvalLog, prices: Mapping[str, Price] | None = None,
                tokens: Callable[[ModelEvent], tuple[int, int]] = usage_tokens) -> CostReport:
    """Tally every model call of ``log`` (read with its samples) by extractor, role and model.

    ``tokens`` counts a call's (input, output) tokens; the default reads the provider's usage.
    """
    prices = load_prices() if prices is None else prices
    samples = log.samples or []
    # key -> [calls, cached, input, output, billed input, billed output], and calls per sample
    sums: dict[tuple[str, str, str], list[int]] = {}
    per_sample: dict[tuple[str, str, str], list[int]] = {}
    for sample in samples:
        parents: dict[str, str | None] = {}
        scorers: dict[str, str] = {}
        for event in sample.events:
            if isinstance(event, SpanBeginEvent):
                parents[event.id] = event.parent_id
                if event.type == "scorer":
                    scorers[event.id] = event.name
        counted: dict[tuple[str, str, str], int] = {}
        for event in sample.events:
            if not isinstance(event, ModelEvent):
                continue
            scorer = _scorer_of(event.span_id, parents, scorers)
            if event.role is None and scorer is None:
                key = (EVALUATED_MODEL, "-", event.model)
            else:
                key = (scorer or UNATTRIBUTED, event.role or "-", event.model)
            inp, out = tokens(event)
            cached = event.cache == "read"
            row = sums.setdefault(key, [0] * 6)
            row[0] += 1
            row[1] += cached
            row[2] += inp
            row[3] += out
            if not cached:
                row[4] += inp
                row[5] += out
            counted[key] = counted.get(key, 0) + 1
        for key, n in counted.items():
            per_sample.setdefault(key, []).append(n)

    judges: list[CallTally] = []
    evaluated: list[CallTally] = []
    for key in sorted(sums):
        calls, cached, inp, out, billed_in, billed_out = sums[key]
        tally = CallTally(extractor=key[0], role=key[1], model=key[2], samples=len(samples), calls=calls,
                          cached_calls=cached, max_calls_per_sample=max(per_sample[key]), input_tokens=inp,
                          output_tokens=out, billed_input_tokens=billed_in, billed_output_tokens=billed_out,
                          cost=_cost(price_of(key[2], prices), billed_in, billed_out))
        (evaluated if key[0] == EVALUATED_MODEL else judges).append(tally)
    return CostReport(log=log.location, samples=len(samples), judges=judges, evaluated=evaluated)


def format_cost(cost: float | None) -> str:
    """Dollars with enough digits for cheap judges; "unknown" when the price is."""
    return UNKNOWN if cost is None else f"${cost:.6f}" if cost < 0.01 else f"${cost:,.2f}"


def cost_table(report: CostReport) -> str:
    """Markdown table of a :func:`cost_report`: one row per judge, their total, then the evaluated model."""
    from pytablewriter import MarkdownTableWriter
    from pytablewriter.typehint import String

    headers = ["Extractor", "Role", "Model", "Calls", "Calls/sample", "Max/sample", "Cached", "Input tokens",
               "Output tokens", "Tokens/sample", "Cost (USD, list)"]

    def row(t: CallTally) -> list[str]:
        return [t.extractor, t.role, t.model, str(t.calls), f"{t.calls_per_sample:.2f}", str(t.max_calls_per_sample),
                str(t.cached_calls), str(t.input_tokens), str(t.output_tokens), f"{t.tokens_per_sample:.1f}",
                format_cost(t.cost)]

    per = report.samples or math.nan
    matrix = [row(t) for t in report.judges]
    matrix.append(["**judges total**", "", "", str(report.judge_calls), f"{report.judge_calls / per:.2f}", "",
                   str(sum(t.cached_calls for t in report.judges)),
                   str(sum(t.input_tokens for t in report.judges)), str(sum(t.output_tokens for t in report.judges)),
                   f"{report.judge_tokens / per:.1f}", format_cost(report.judge_cost)])
    matrix += [row(t) for t in report.evaluated]
    writer = MarkdownTableWriter()
    writer.headers = headers
    writer.value_matrix = matrix
    writer.type_hints = [String] * len(headers)  # keep the formatted strings as written
    return writer.dumps()
