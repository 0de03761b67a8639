"""The model card of a trained adapter: ``README.md`` (Hugging Face layout) and ``martingale_card.json``.

The card records what is needed to reproduce and to judge the adapter: the base model, the data
(task, data file, the split's sizes and seed), the seeds, the algorithm with ``beta``, the reward's
coefficients, terms and extractor (or the teacher, for a distilled organism), the LoRA settings, the
TRL arguments, the reward components at the last logged step, and the held-out evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from martingale_harness.training.config import CommonConfig, DistillConfig, TrainConfig
from martingale_harness.training.episodes import Split
from martingale_harness.training.evaluate import local_model

CARD_JSON = "martingale_card.json"


def card_data(config: CommonConfig, *, kind: str, split: Split, final_metrics: dict[str, float],
              evaluation: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """The card's content as a JSON-able mapping."""
    data: dict[str, Any] = {
        "kind": kind,
        "base_model": config.base_model,
        "data": {"task": f"martingale/{config.task_name}", "data": config.data or "(the task's bundled set)",
                 "paradigm": config.paradigm, "system_prompt": config.system_prompt,
                 "train_samples": len(split.train), "heldout_samples": len(split.heldout),
                 "holdout_fraction": config.holdout_fraction, "split_seed": config.split_seed,
                 "max_items": config.max_items},
        "seed": config.seed,
        "lora": config.to_dict()["lora"],
        "trainer": dict(config.trainer),
        "final_metrics": final_metrics,
        "evaluation": evaluation,
        **extra,
    }
    if isinstance(config, TrainConfig):
        data["algorithm"] = config.algorithm
        if config.algorithm == "expert_iteration":
            data["expert_iteration"] = config.to_dict()["expert_iteration"]
        else:
            data["beta"] = config.beta
        data["init_adapter"] = config.init_adapter
        data["reward"] = config.to_dict()["reward"]
        data["episodes"] = config.to_dict()["episodes"]
    if isinstance(config, DistillConfig):
        data["teacher"] = config.to_dict()["teacher"]
    return data


def write_model_card(adapter_dir: Path, config: CommonConfig, *, kind: str, split: Split,
                     final_metrics: dict[str, float], evaluation: dict[str, Any] | None, **extra: Any) -> Path:
    """Write ``README.md`` and ``martingale_card.json`` into ``adapter_dir``; returns the README path."""
    data = card_data(config, kind=kind, split=split, final_metrics=final_metrics, evaluation=evaluation, **extra)
    (adapter_dir / CARD_JSON).write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    front = {"base_model": config.base_model, "library_name": "peft",
             "tags": ["martingale-harness", "lora", "trl", kind if kind != "train" else data["algorithm"]]}
    title = ("a belief-entrenched model organism distilled from an entrenched teacher" if kind == "distill"
             else "trained to lower the Martingale Score")
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
        f"# LoRA adapter: {title}", "",
        f"Made by `martingale {kind}` (martingale-harness). Base model: `{config.base_model}`.", "",
        "Evaluate it with the harness (the `local` backend checks the base and runs the LoRA canary):", "",
        "```bash",
        f"inspect eval martingale/{config.task_name} --model {local_model(config.base_model, adapter_dir.resolve())}",
        "```", "",
        "## Training", "",
        _table({k: v for k, v in data.items() if k not in ("final_metrics", "evaluation", "trainer", "kind")}), "",
        "TRL arguments (`trainer`):", "", _table(data["trainer"]) if data["trainer"] else "(TRL's defaults)", "",
        "## Final reward components (last logged step)" if kind == "train" else "## Final training metrics", "",
        _table(final_metrics) if final_metrics else "(none logged)", "",
        "## Held-out evaluation", "",
        _evaluation(evaluation), "",
    ]
    readme = adapter_dir / "README.md"
    readme.write_text("\n".join(lines), encoding="utf-8")
    return readme


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return "`" + json.dumps(value, default=str) + "`"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _table(values: dict[str, Any]) -> str:
    return "\n".join(["| key | value |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in values.items())])


def _evaluation(evaluation: dict[str, Any] | None) -> str:
    if not evaluation:
        return "Not run (`evaluation.enabled: false`, or no held-out questions)."
    rows = ["| run | model | MS | 95% CI | Brier (posterior) | inertia | extraction failures | pairs |",
            "|---|---|---|---|---|---|---|---|"]
    for name in ("start", "trained"):
        run = evaluation.get(name)
        if run is None:  # evaluation.start: false
            continue
        m = run["metrics"]
        rows.append(f"| {name} | `{run['model']}` | {_cell(m.get('ms_slope'))} | "
                    f"[{_cell(m.get('ms_slope_ci_low'))}, {_cell(m.get('ms_slope_ci_high'))}] | "
                    f"{_cell(m.get('brier_posterior'))} | {_cell(m.get('inertia'))} | "
                    f"{_cell(m.get('extraction_failure_rate'))} | {_cell(m.get('n_pairs'))} |")
    comparison = evaluation.get("comparison")
    if comparison is None:
        note = "The start model was not evaluated in this run (`evaluation.start: false`)."
    elif "error" in comparison:
        note = f"Paired comparison not available: {comparison['error']}"
    else:
        note = f"Paired (same questions, every belief read in both runs):\n\n{_table(comparison)}"
    where = evaluation.get("heldout_data", "the held-out split")
    seed = evaluation.get("seed")
    draws = (f"{evaluation.get('epochs', 1)} draw(s) per sample, "
             + ("unseeded" if seed is None else f"seed {seed}") if "epochs" in evaluation else "")
    settings = f"; {draws}" if draws else ""
    return "\n".join(rows) + f"\n\n{evaluation['heldout_samples']} held-out samples ({where}{settings}).\n\n" + note
