"""The plugin system: hooks, the built-in registration path, clear errors."""

from __future__ import annotations

import asyncio

import pluggy
import pytest

from martingale_harness.errors import ConfigError
from martingale_harness.extraction.beliefs import BeliefReading
from martingale_harness.extraction.transcript import Transcript, Turn
from martingale_harness.plugin import hookspecs
from martingale_harness.plugin.host import PluginHost, get_extractor, plugin_host


class ConstantExtractor:
    """A third-party style extractor: always reads 0.5."""

    def __init__(self, name: str = "constant") -> None:
        self.name = name

    async def extract(self, transcript: Transcript) -> list[BeliefReading]:
        return [BeliefReading.ok(0.5) for _ in transcript.turns]


def _host(*plugins: object) -> PluginHost:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"plugin{i}")
    return PluginHost(pm)


class _Plugin:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookspecs.hookimpl
    def martingale_register_extractors(self, register):  # type: ignore[no-untyped-def]
        for name in self.names:
            register(ConstantExtractor(name))


def test_a_registered_extractor_is_found_and_runs() -> None:
    extractor = get_extractor("constant", _host(_Plugin("constant")))
    transcript = Transcript("q?", (Turn("prior", "p", "a"), Turn("posterior", "p", "b")))
    readings = asyncio.run(extractor.extract(transcript))
    assert [r.value for r in readings] == [0.5, 0.5]


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="two plugins register an extractor named 'x': 'plugin0' and 'plugin1'"):
        _host(_Plugin("x"), _Plugin("x")).extractors()


def test_unknown_extractor_lists_available() -> None:
    with pytest.raises(ConfigError, match="unknown extractor 'nope'; available: a, b"):
        get_extractor("nope", _host(_Plugin("b", "a")))


def test_builtin_self_report_comes_through_the_entry_point() -> None:
    host = plugin_host()
    assert "self_report" in host.extractors()
    assert host.pm.get_plugin("self_report") is not None  # registered under its entry-point name
    record = next(r for r in host.records if r.name == "self_report")
    assert (record.status, record.origin, record.target) == ("loaded", "built-in", "martingale_plugins.self_report")


def test_registry_yaml_lists_the_installed_extractor_entry_points() -> None:
    from importlib.metadata import entry_points

    from martingale_harness.project_files import read_yaml, resource_path

    listed = read_yaml(resource_path("registry.yaml"))["plugins"]["extractor"]
    installed = {ep.name: ep.value for ep in entry_points(group=hookspecs.PROJECT)}
    assert listed == {k: v for k, v in installed.items() if k in listed}
    assert set(listed) <= set(plugin_host().extractors())
