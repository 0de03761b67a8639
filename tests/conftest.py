"""Shared fixtures: where the real data lives, and a clean plugin state per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MARTINGALE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def forecastbench_dir() -> Path:
    """../shared/data/forecastbench (real ForecastBench files); tests skip when it is absent."""
    path = SHARED_DATA / "forecastbench"
    if not path.is_dir():
        pytest.skip(f"real ForecastBench data not found at {path} (set MARTINGALE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def cmv_file() -> Path:
    """../shared/data/cmv: real r/ChangeMyView posts (Priniski & Horne); tests skip when absent."""
    path = SHARED_DATA / "cmv" / "priniski_cmv_top2018_sociomoral.jsonl"
    if not path.is_file():
        pytest.skip(f"real CMV data not found at {path} (set MARTINGALE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def openreview_file() -> Path:
    """../shared/data/openreview: real ICLR 2017 submissions and reviews; tests skip when absent."""
    path = SHARED_DATA / "openreview" / "iclr2017_openreview_dylanjoo_sample300.jsonl"
    if not path.is_file():
        pytest.skip(f"real OpenReview data not found at {path} (set MARTINGALE_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def isolated_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Judge calls use inspect's model cache: give every test its own, never the user's."""
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("inspect-cache")))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama-style model with the SmolLM2 tokenizer (martingale_harness.testing.tiny_model)."""
    from martingale_harness.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)
