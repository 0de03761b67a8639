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

import sys
from types import TracebackType

from inspect_ai._util.error import PrerequisiteError  # what inspect's own hook prints without a traceback
from inspect_ai.util import display_type


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
        if isinstance(error, PrerequisiteError) and _quiet():
            _say(str(error.message))
        previous(kind, error, traceback)

    sys.excepthook = hook
    _installed = True


_heard: set[tuple[str | None, str]] = set()


def eval_id() -> str | None:
    """The running task's id (so "once" means once per run, not once per process)."""
    from inspect_ai.log._samples import sample_active  # no public accessor for the running sample

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
