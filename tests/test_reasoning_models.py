"""API reasoning models: the reasoning reaches the transcript, the log (``inspect view``) and the step judge.

Tested against a local server that speaks the OpenAI chat-completions protocol
(`tests/fakes/openai_server.py`) and returns DeepSeek-R1-style reasoning, either in the
assistant message's ``reasoning_content`` field or inline as ``<think>...</think>``; the real paths are
inspect's own providers: ``deepseek/deepseek-reasoner`` (inspect's native DeepSeek provider, pointed at
the local server with ``DEEPSEEK_BASE_URL``) and ``openai-api/local/<model>``. The grader is the same
server under the ``openai-api`` provider, bound with ``model_roles={"grader": ...}`` (``--model-role``).
What the reasoning must look like in each place is rebuilt from the server's own deterministic
functions (``reasoning_for``, ``answer_for``, ``judge_list_for``), not from the harness's code.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import inspect_ai.model._model as inspect_model_module
import pytest
from fakes.openai_server import (
    REASONING_PARAGRAPHS,
    LocalOpenAIServer,
    RequestRecord,
    answer_for,
    judge_list_for,
    messages_key,
    reasoning_for,
    text_of,
)
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalSample, read_eval_log
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ContentReasoning, ContentText, ModelName
from inspect_ai.solver import TaskState
from martingale_plugins.step_judge import STEPS_HEADER, judge_steps

from martingale_harness.extraction.transcript import TURNS_KEY, Transcript
from martingale_harness.extraction.transcript_state import transcript_from_state

KEY = f"sk-test-PLANTED-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def fresh_model_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty memo of inspect's ``get_model`` for each test, restored afterwards.

    inspect memoizes models by name, arguments and config but not by the environment they were built
    from: a ``deepseek/deepseek-reasoner`` built by an earlier test (another key, another server's
    ``DEEPSEEK_BASE_URL``) would otherwise be reused here and call a server that is gone.
    """
    monkeypatch.setattr(inspect_model_module, "_models", {})


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def _post(server: LocalOpenAIServer, messages: list[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions", data=json.dumps({"model": "m", "messages": messages}).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("mode", ["none", "reasoning_content", "think"])
def test_server_reasoning_modes(mode: str) -> None:
    messages = [{"role": "user", "content": "Will it rain tomorrow?"}]
    key = messages_key(messages)
    with LocalOpenAIServer(reasoning=mode) as server:
        reply = _post(server, messages)
        judge = _post(server, [{"role": "user", "content": "Return a JSON list of 4 numbers between 0 and 1."}])
    message = reply["choices"][0]["message"]
    answer = answer_for(key)[0]
    assert len(_paragraphs(reasoning_for(key))) == REASONING_PARAGRAPHS
    if mode == "none":
        assert message["content"] == answer and "reasoning_content" not in message
    elif mode == "reasoning_content":
        assert message["content"] == answer and message["reasoning_content"] == reasoning_for(key)
        assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    else:
        assert message["content"] == f"<think>\n{reasoning_for(key)}\n</think>\n\n{answer}"
        assert "reasoning_content" not in message
    judged = json.loads(_paragraphs(judge["choices"][0]["message"]["content"])[-1])
    assert len(judged) == 4 and all(0 <= v <= 1 for v in judged)


def test_server_rejects_a_wrong_key_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="reasoning mode"):
        LocalOpenAIServer(reasoning="hidden")
    with LocalOpenAIServer(api_key="sk-right") as server:
        with pytest.raises(urllib.error.HTTPError) as info:
            _post(server, [{"role": "user", "content": "hi"}], key=KEY)
        assert info.value.code == 401 and KEY not in info.value.read().decode()
        assert _post(server, [{"role": "user", "content": "hi"}], key="sk-right")["choices"]
        assert (server.unauthorized, server.completions) == (1, 1)


def _transcript(sample: EvalSample, model: str) -> Transcript:
    state = TaskState(model=ModelName(model), sample_id=sample.id, epoch=sample.epoch, input=sample.input,
                      messages=sample.messages, metadata=sample.metadata, store=sample.store)
    return transcript_from_state(state)


def _sample_requests(log: list[RequestRecord], question: str) -> tuple[RequestRecord, RequestRecord, RequestRecord]:
    """The prior, posterior and judge requests of the sample with this question."""
    mine = [r for r in log if question in text_of(r.messages)]
    judge = [r for r in mine if STEPS_HEADER in text_of(r.messages)]
    model = [r for r in mine if r not in judge]
    assert len(judge) == 1 and [r.followup for r in model] == [False, True], [r.n for r in mine]
    return model[0], model[1], judge[0]


def _judge_prompt_steps(judge: RequestRecord) -> list[str]:
    prompt = text_of(judge.messages)
    return json.loads(prompt[prompt.index(STEPS_HEADER) + len(STEPS_HEADER):])


def _file_contains(path: Path, needle: str) -> bool:
    with zipfile.ZipFile(path) as z:  # an .eval log: every member, decompressed
        return needle.encode() in path.read_bytes() or any(needle.encode() in z.read(n) for n in z.namelist())


@pytest.mark.parametrize(
    "model,mode",
    [("deepseek/deepseek-reasoner", "reasoning_content"), ("openai-api/local/r1-distill", "think")],
    ids=["deepseek-reasoning_content", "openai-api-think"],
)
def test_reasoning_reaches_transcript_log_and_step_judge(
    model: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalOpenAIServer(reasoning=mode, api_key=KEY, models=("deepseek-reasoner", "r1-distill", "judge")) as srv:
        for name, value in {"DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": KEY,
                            "LOCAL_BASE_URL": srv.base_url, "LOCAL_API_KEY": KEY}.items():
            monkeypatch.setenv(name, value)
        (log,) = inspect_eval("martingale/forecast", model=model, model_roles={"grader": "openai-api/local/judge"},
                              task_args={"extractors": "self_report,step_judge"}, limit=1, display="none",
                              max_retries=2, timeout=60, log_dir=str(tmp_path / "logs"))  # fail, never hang
        requests = srv.request_log()
        assert srv.unauthorized == 0  # the planted key was sent, and accepted
    assert log.status == "success", log.error
    # what `inspect view` shows: the log as written, long texts resolved from its attachments
    on_disk = read_eval_log(log.location, resolve_attachments=True)
    (sample,) = on_disk.samples or []
    prior, posterior, judge = _sample_requests(requests, str(sample.input))
    keys = [messages_key(prior.messages), messages_key(posterior.messages)]

    # (a) the transcript's turns: reasoning apart from the answer, which holds no <think> block
    turns = _transcript(sample, model).turns
    assert [t.reasoning for t in turns] == [reasoning_for(k) for k in keys]
    assert [t.answer for t in turns] == [answer_for(k)[0] for k in keys]

    # (b) the sample's messages and its model events hold the reasoning as reasoning content
    replies = [m for m in sample.messages if isinstance(m, ChatMessageAssistant)]
    for message in replies:
        assert isinstance(message.content, list)
    shown = [[c.reasoning for c in m.content if isinstance(c, ContentReasoning)] for m in replies]
    assert shown == [[reasoning_for(k)] for k in keys]
    events = [e for e in sample.events if e.event == "model" and e.model == on_disk.eval.model]
    assert [[c.reasoning for c in e.output.message.content if isinstance(c, ContentReasoning)]
            for e in events] == [[reasoning_for(k)] for k in keys]

    # the posterior request hands the prior's reasoning back the way this provider expects it
    (earlier,) = [m for m in posterior.messages if m["role"] == "assistant"]
    if mode == "reasoning_content":
        assert earlier["reasoning_content"] == reasoning_for(keys[0])
    else:
        assert "<think" in earlier["content"] and reasoning_for(keys[0]) in earlier["content"]

    # (c) the judge's prompt lists each turn's reasoning paragraphs, then its answer
    expected = [step for k in keys for step in [*_paragraphs(reasoning_for(k)), answer_for(k)[0]]]
    assert _judge_prompt_steps(judge) == expected
    # a turn's belief is the judge's element after that turn's last step (reasoning counted)
    judged = judge_list_for(messages_key(judge.messages), len(expected) + 1)
    per_turn = REASONING_PARAGRAPHS + 1
    assert sample.scores is not None
    assert sample.scores["step_judge"].value["prior"] == judged[per_turn]
    assert sample.scores["step_judge"].value["posterior"] == judged[2 * per_turn]
    # self_report reads the answer, not the reasoning
    assert sample.scores["self_report"].value["prior"] == float(answer_for(keys[0])[1])
    assert not _file_contains(Path(log.location), KEY)


def _turns_state(*content: ContentReasoning | ContentText) -> TaskState:
    state = TaskState(model=ModelName("anthropic/claude"), sample_id=1, epoch=1, input="Q?",
                      messages=[ChatMessageUser(content="Q? prior"), ChatMessageAssistant(content=list(content))])
    state.store.set(TURNS_KEY, [{"stage": "prior", "prompt": "Q? prior", "message": 1}])
    return state


def test_redacted_reasoning_gives_the_judge_its_readable_text() -> None:
    # how inspect 0.3.285 stores Claude's thinking block and a redacted_thinking block
    state = _turns_state(
        ContentReasoning(reasoning="EqQBCkYIARgCKkD-opaque-signature", summary="I weigh it.\n\nI settle.",
                         redacted=True),
        ContentReasoning(reasoning="opaque-redacted-payload", redacted=True),
        ContentText(text="Probability: 0.4"),
    )
    steps, _ = judge_steps(transcript_from_state(state))
    assert steps == ["I weigh it.", "I settle.", "Probability: 0.4"]
