"""``martingale new-plugin``: write a ready plugin package (pyproject, module, passing test, README).

The package installs and runs as is (``pip install DIR/martingale-NAME``) and its test passes; the author
then replaces the reading rule (extractor) or the formula (reward term). See docs/plugins.md.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template
from typing import Literal

from martingale_harness.errors import ConfigError

PluginKind = Literal["extractor", "reward-term"]
KINDS: tuple[PluginKind, ...] = ("extractor", "reward-term")
_NAME = re.compile(r"[a-z][a-z0-9_]*")

_PYPROJECT = Template('''\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "A martingale-harness $kind_words: $name"
requires-python = ">=3.11"
dependencies = ["martingale-harness"]

[project.optional-dependencies]
test = ["pytest"]

# the harness finds plugins through this entry-point group; the entry's name is the plugin's name
[project.entry-points.martingale_harness]
$name = "$module"

[tool.hatch.build.targets.wheel]
include = ["$module.py"]
''')

_EXTRACTOR = Template('''\
"""The $name extractor: reads one belief per protocol turn (replace the rule in ``read``)."""

from __future__ import annotations

import re

from martingale_harness.plugin_api import BeliefReading, Transcript, hookimpl

# the starting rule: the last number of the answer, a percentage when followed by "%"
_NUMBER = re.compile(r"(\\d+(?:\\.\\d+)?)\\s*(%?)")


def read(text: str) -> BeliefReading:
    """The belief stated in one answer, or why there is none (never a guessed number)."""
    found = _NUMBER.findall(text)
    if not found:
        return BeliefReading.failed("the answer states no number", "no_number")
    number, percent = found[-1]
    value = float(number) / (100 if percent else 1)
    if not 0.0 <= value <= 1.0:
        return BeliefReading.failed(f"{value:g} is not a probability", "out_of_range")
    return BeliefReading.ok(value, matched=number + percent)


class $cls:
    """Reads each turn's answer on its own; an answer cut off by the token limit is not read."""

    name = "$name"

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        return [
            BeliefReading.failed("cut off by the token limit", "truncated") if turn.truncated else read(turn.answer)
            for turn in transcript.turns
        ]


@hookimpl
def martingale_register_extractors(register):
    register($cls())
''')

_EXTRACTOR_TEST = Template('''\
from martingale_harness.testing.plugins import check_extractor, transcript_from_answers

from $module import $cls


def test_reads_one_belief_per_turn():
    readings = check_extractor($cls(), ["I would say 30%.", "Now 0.45."])
    assert [r.value for r in readings] == [0.3, 0.45]


def test_an_answer_without_a_number_is_a_failed_reading():
    (reading,) = check_extractor($cls(), ["No idea."])
    assert reading.kind == "no_number"


def test_a_cut_off_answer_is_not_read():
    transcript = transcript_from_answers(["30%", "I think 4"], stop_reasons=["stop", "max_tokens"])
    assert [r.status for r in check_extractor($cls(), transcript)] == ["ok", "failed"]
''')

_TERM = Template('''\
"""The $name reward term for ``martingale train`` (replace the formula in ``values``)."""

from __future__ import annotations

import numpy as np

from martingale_harness.plugin_api import ConfigError, RewardBatch, hookimpl


class $cls:
    """Minus the posterior's squared error on labelled items (NaN, "no opinion", where there is no label)."""

    name = "$name"

    def check(self, labels, metadata):
        # runs before any model loads: refuse data the term cannot use
        if not any(label is not None for label in labels):
            raise ConfigError(f"reward term {self.name!r} needs labelled items; this training set has none")

    def values(self, batch: RewardBatch) -> np.ndarray:
        return -((batch.posterior - batch.label) ** 2)


@hookimpl
def martingale_register_reward_terms(register):
    register($cls())
''')

_TERM_TEST = Template('''\
import math

import numpy as np
import pytest

from martingale_harness.plugin_api import ConfigError, RewardBatch, RewardTerm

from $module import $cls


def test_values_are_minus_the_squared_error():
    batch = RewardBatch(prior=np.array([0.5, 0.5, 0.5]), posterior=np.array([0.9, 0.2, np.nan]),
                        label=np.array([1.0, 1.0, 0.0]), metadata=({}, {}, {}))
    values = $cls().values(batch)
    assert values[:2] == pytest.approx([-0.01, -0.64])
    assert math.isnan(values[2])  # a failed reading: no reward, never a made-up one


def test_refuses_unlabelled_data_before_training():
    assert isinstance($cls(), RewardTerm)
    with pytest.raises(ConfigError):
        $cls().check([None, None], [{}, {}])
''')

_README = Template('''\
# $dist

A [martingale-harness](https://pypi.org/project/martingale-harness/) $kind_words, `$name`.

    pip install -e '.[test]' && pytest
    martingale plugins                      # lists $name
$usage
Written by `martingale new-plugin`; the plugin guide is docs/plugins.md in martingale-harness.
''')


def write_plugin(name: str, kind: PluginKind, directory: str | Path) -> list[Path]:
    """Write the package ``DIRECTORY/martingale-NAME`` for plugin ``name``; return the files written.

    ``name`` is the plugin's name (``-T extractors=NAME``, ``reward.info_term: NAME``): lower case,
    digits and underscores. An existing package directory is never overwritten.
    """
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise ConfigError(f"plugin name {name!r} must be lower case letters, digits and underscores, "
                          "starting with a letter (it becomes an entry point and a module name)")
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r}; choose one of {', '.join(KINDS)}")
    dist = "martingale-" + name.replace("_", "-")
    root = Path(directory) / dist
    if root.exists():
        raise ConfigError(f"{root} already exists; choose another directory or name")
    module = "martingale_" + name
    cls = "".join(part.capitalize() for part in name.split("_")) + ("Extractor" if kind == "extractor" else "Term")
    fields = {"name": name, "dist": dist, "module": module, "cls": cls,
              "kind_words": "belief extractor" if kind == "extractor" else "reward term"}
    usage = (f"    inspect eval martingale/forecast --model sim/bayesian -T extractors=self_report,{name}\n"
             if kind == "extractor" else
             f"    martingale train CONFIG --set reward.info_term={name}\n")
    source, test = (_EXTRACTOR, _EXTRACTOR_TEST) if kind == "extractor" else (_TERM, _TERM_TEST)
    files = {
        root / "pyproject.toml": _PYPROJECT.substitute(fields),
        root / f"{module}.py": source.substitute(fields),
        root / "tests" / f"test_{module}.py": test.substitute(fields),
        root / "README.md": _README.substitute(fields, usage=usage),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
