"""Test helpers for `prism serve`: the real app under uvicorn in a thread on a free 127.0.0.1 port,
and small policies whose rules block a chosen word deterministically."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Iterator

from prism_cli.gate import Gate
from prism_cli.moderators.rules import RulesModerator
from prism_cli.policy import Policy, parse_policy
from tests.llama_server import free_port


def word_policy(word: str, applies_to: str = "both", window: int = 4, holdback: int = 2) -> Policy:
    roles = "[prompt, response]" if applies_to == "both" else applies_to
    return parse_policy(
        f"""\
name: serve-test
stream: {{window: {window}, holdback: {holdback}}}
categories:
  - id: S1
    name: Violent Crimes
    description: a word this test forbids
    applies_to: {roles}
    rules: {{keywords: [{word}]}}
""",
        "serve-test.yaml",
    )


def rules_gate(word: str, **kw: Any) -> Gate:
    policy = word_policy(word, **kw)
    return Gate(policy, [RulesModerator(policy)])


def client(url: str, key: str = "unused") -> Any:
    """The official openai client, without retries (a test sees the first answer)."""
    import openai

    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)


def streamed(stream: Any) -> tuple[str, str | None]:
    """A streamed chat reply's text and finish_reason."""
    text, finish = [], None
    for ch in stream:
        if ch.choices:
            text.append(ch.choices[0].delta.content or "")
            finish = ch.choices[0].finish_reason or finish
    return "".join(text), finish


@contextlib.contextmanager
def serving(prism: Any, grace: float = 2.0) -> Iterator[str]:
    """Run build_app(prism) with uvicorn in a thread; yields "http://127.0.0.1:PORT/v1"."""
    import uvicorn

    from prism_cli.serve.app import build_app

    port = free_port()
    config = uvicorn.Config(build_app(prism), host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=grace)  # fmt: skip
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not t.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        t.join(timeout=30)
