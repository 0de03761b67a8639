"""Refusals and failed runs are heard under every ``--display`` mode, ``none`` included.

inspect shows a ``PrerequisiteError`` (how every refusal of the harness reaches it: a bad task argument,
bad data, an unbound grader role, the LoRA canary, an unknown adapter or base model, a missing key)
through its rich console, and a task that failed during the run (an API key the server rejects)
through its display. ``--display none`` makes both quiet, so a script's run would fail without a word.
Under ``--display none`` only, the harness writes the message to stderr itself, so no other mode
prints it twice:

* a refusal before the run (no log, as inspect leaves none): the process's exception hook, installed
  when inspect loads the harness's entry points; from Python, ``inspect_ai.eval(...)`` raises the
  error to the caller as before;
* an error during a sample's run (an API key the server rejects): the protocol solver prints it once
  per distinct error before inspect records it in the log. inspect's CLI still exits 0 after a task
  that ended in error; a script checks the log's status (``inspect log dump``) or stderr.

(An inspect hook on task end would also see the log's path, but any registered hook makes inspect
print a banner on every run, in every display mode.)
"""

from __future__ import annotations

import difflib
import re
import sys
from types import TracebackType

from inspect_ai.util import display_type

from martingale_harness._inspect_compat import PrerequisiteError  # what inspect's own hook prints without a traceback


def _quiet() -> bool:
    return display_type() == "none"


def _say(text: str) -> None:
    # builtin print, as inspect's hook: a rich console would read [brackets] in messages as markup
    print(f"\n{text}\n", file=sys.stderr, flush=True)


_installed = False


def install_excepthook() -> None:
    """Wrap the process's exception hook so an uncaught refusal reaches stderr under ``--display none``.

    Idempotent. inspect's own hook (set before it loads entry points) still runs afterwards and keeps
    the exit status; under other display modes it prints the message and this adds nothing.
    """
    global _installed
    if _installed:
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
        error = _only(error)
        provider = _UNKNOWN_PROVIDER.search(str(error)) if isinstance(error, ValueError) else None
        if provider:  # inspect would print a 60-line traceback for a typo in --model
            _say(unknown_provider_message(provider.group(1), provider.group(2)))
            sys.exit(1)
        if isinstance(error, PrerequisiteError) and _quiet():
            _say(str(error.message))
        previous(kind, error, traceback)
        if isinstance(error, PrerequisiteError) and NO_TASKS in str(error.message):
            hint = unknown_task_hint(sys.argv[1:])
            if hint:
                _say(hint)

    sys.excepthook = hook
    _installed = True


_UNKNOWN_PROVIDER = re.compile(r"Model API (\S+) of model '([^']+)' not recognized")
NO_TASKS = "No inspect tasks were found"
PROJECT_PROVIDERS = ("sim", "local", "sglang")
"""The model providers of this project (inspect's own are listed in its documentation)."""


def _only(error: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one error each, as inspect's task groups raise them."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def unknown_provider_message(provider: str, model: str) -> str:
    """One line for a ``--model`` whose provider no installed package registers, with the likely one."""
    close = difflib.get_close_matches(provider, PROJECT_PROVIDERS, n=1)
    guess = f"did you mean '{close[0]}/{model.partition('/')[2]}'? " if close else ""
    return (f"martingale: no model provider '{provider}' (in --model {model}); {guess}"
            f"this project's providers are {', '.join(PROJECT_PROVIDERS)}; inspect's are listed at "
            "https://inspect.aisi.org.uk/providers.html")


def unknown_task_hint(argv: list[str]) -> str | None:
    """For ``inspect eval martingale/<typo>``: the task meant, and where the list is."""
    from martingale_harness.project_files import read_yaml, resource_path

    asked = [a for a in argv if a.startswith("martingale/")]
    if not asked:
        return None
    known = [f"martingale/{name}" for name in sorted(read_yaml(resource_path("registry.yaml")).get("tasks") or {})]
    lines = []
    for name in asked:
        if name.split("@")[0] not in known:
            close = difflib.get_close_matches(name, known, n=1)
            lines.append(f"martingale: no task {name}" + (f"; did you mean {close[0]}?" if close else ""))
    if not lines:
        return None
    return "\n".join(lines) + f"\n`martingale tasks` lists them: {', '.join(known)}"


_heard: set[tuple[str | None, str]] = set()


def eval_id() -> str | None:
    """The running task's id (so "once" means once per run, not once per process)."""
    from martingale_harness._inspect_compat import sample_active  # no public accessor for the running sample

    active = sample_active()
    return getattr(active, "eval_id", None)


def sample_failed(sample_id: object, error: Exception) -> None:
    """Under ``--display none``, say on stderr (once per run and distinct error) that a sample's run failed.

    Called by the protocol solver before the error goes on to inspect, which records it in the log.
    """
    if not _quiet():
        return
    text = f"{type(error).__name__}: {error}".strip()
    key = (eval_id(), text)
    if key in _heard:
        return
    _heard.add(key)
    _say(f"martingale: sample {sample_id} failed ({text}); inspect records the error in the run's log")
