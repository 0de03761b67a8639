"""``-M grid=G`` and ``-M phrasing=K``: the sims write their beliefs coarsely and in one phrasing, never change them."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.log import EvalLog
from inspect_ai.model import get_model

from martingale_harness.backends.sim_provider import AnswerStyle

ENTRENCHED = {"kappa": 0.8, "horizon": 1, "strength": 0.3}


def _run(tmp_path: Path, name: str, **style: object) -> EvalLog:
    model = get_model("sim/entrenched", memoize=False, **ENTRENCHED, **style)
    (log,) = inspect_eval("martingale/forecast", model=model, display="none", log_realtime=False,
                          log_dir=str(tmp_path / name))
    assert log.status == "success"
    return log


def _beliefs(log: EvalLog) -> dict[str, tuple[float, float]]:
    values = {str(s.id): s.scores["self_report"].value for s in log.samples or []}  # type: ignore[index]
    return {k: (v["prior"], v["posterior"]) for k, v in values.items()}  # type: ignore[index]


def test_grid_rounds_the_stated_beliefs_of_the_same_paths(tmp_path: Path) -> None:
    exact = _beliefs(_run(tmp_path, "exact"))
    coarse_log = _run(tmp_path, "coarse", grid=0.1, phrasing=0)
    coarse = _beliefs(coarse_log)
    assert coarse.keys() == exact.keys() and len(coarse) == 64
    for key, (prior, posterior) in exact.items():
        # the same latent path, written to the nearest tenth: nothing else about the agent changes
        assert coarse[key] == pytest.approx((round(prior, 1), round(posterior, 1)), abs=1e-9)
    replies = [m.text for s in coarse_log.samples or [] for m in s.messages if m.role == "assistant"]
    assert len(replies) == 128
    assert all(r.splitlines()[-1] in {f"Probability: {k / 10:.1f}" for k in range(11)} for r in replies)
    # rounding to 0.1 keeps a kappa = 0.8 agent clearly entrenched
    metrics = coarse_log.results.scores[0].metrics  # type: ignore[union-attr]
    assert metrics["ms_slope_ci_low"].value > 0.4


def test_without_style_the_phrasings_still_vary(tmp_path: Path) -> None:
    log = _run(tmp_path, "varied")
    endings = {m.text.splitlines()[-1].split(" ")[0] for s in log.samples or [] for m in s.messages
               if m.role == "assistant"}
    assert len(endings) >= 4


@pytest.mark.parametrize(("grid", "decimals"), [(0.1, "0.3"), (0.05, "0.35"), (0.25, "0.25"), (0.5, "0.5")])
def test_grid_formats_with_the_decimals_it_needs(grid: float, decimals: str) -> None:
    style = AnswerStyle(grid=grid)
    belief = style.round(0.34 if grid == 0.1 else 0.36 if grid == 0.05 else 0.3 if grid == 0.25 else 0.4)
    assert style.format("Probability: {p:.4f}", belief) == f"Probability: {decimals}"
    assert style.format("{pct:.2f}%", belief) == f"{float(decimals) * 100:.0f}%"


@pytest.mark.parametrize(("args", "match"), [({"grid": 0}, "grid must lie"), ({"grid": 0.7}, "grid must lie"),
                                              ({"phrasing": 9}, "phrasing must be one of"),
                                              ({"phrasing": "x"}, "-M phrasing must be an integer"),
                                              ({"answer_chars": 0}, "answer_chars must be a positive integer"),
                                              ({"answer_chars": 300, "terse": True}, "without terse")])
def test_bad_style_args_are_refused(args: dict[str, object], match: str) -> None:
    with pytest.raises(PrerequisiteError, match=match):
        get_model("sim/entrenched", memoize=False, **args)


def test_terse_answers_are_the_belief_line_alone(tmp_path: Path) -> None:
    log = _run(tmp_path, "terse", grid=0.1, phrasing=0, terse=True)
    replies = [m.text for s in log.samples or [] for m in s.messages if m.role == "assistant"]
    assert len(replies) == 128 and all(r.startswith("Probability: ") and "\n" not in r for r in replies)
    with pytest.raises(PrerequisiteError, match="-M terse must be true or false"):
        get_model("sim/entrenched", memoize=False, terse="sometimes")


def test_answer_chars_pads_every_answer_and_changes_no_belief(tmp_path: Path) -> None:
    exact = _beliefs(_run(tmp_path, "exact"))
    padded_log = _run(tmp_path, "padded", answer_chars=700)
    assert _beliefs(padded_log) == exact  # the filler states no number the extractor could read
    replies = [m.text for s in padded_log.samples or [] for m in s.messages if m.role == "assistant"]
    assert len(replies) == 128 and {len(r) for r in replies} == {700}
    # the belief stays on the last line, after the filler paragraph
    assert all("stands in for the length" in r.rsplit("\n\n", 1)[0] for r in replies)
