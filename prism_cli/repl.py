"""The interactive chat: approved text streams to stdout, everything else (prompts, notices,
verdicts) goes to stderr through rich. Ctrl-C stops the current generation and stays; a second
Ctrl-C during the same turn interrupts harder (for a stuck server); Ctrl-D or /exit leaves.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from prism_cli.errors import PrismError
from prism_cli.gate import Gate
from prism_cli.line_input import LineReader
from prism_cli.session import (
    INTERRUPTED, PROMPT_BLOCKED, RESPONSE_BLOCKED, ChatSession, TurnResult, labels, unscored_notice,
)
from prism_cli.verdict import Decision, Verdict

INTRO = """\
Type a message and press Enter. End a line with \\ to continue it, or wrap a block in \"\"\".
(Start a message with a space to send text that begins with /.) Arrow keys edit and recall lines."""


Handler = Callable[["Repl", str], "str | None"]


@dataclass(frozen=True)
class Command:
    """A REPL command: how it is typed, one line of help, and what it does (None, or "exit" to leave)."""

    usage: str
    help: str
    run: Handler


COMMANDS: dict[str, Command] = {}
"""The REPL's commands by name; /help lists them in this order. Add one with `@repl_command(...)`."""


def repl_command(name: str, usage: str, help: str) -> Callable[[Handler], Handler]:
    """Register a REPL command: a function of the Repl and the text after the name (e.g. /why next)."""

    def add(fn: Handler) -> Handler:
        COMMANDS[name] = Command(usage, help, fn)
        return fn

    return add


class Repl:
    def __init__(
        self,
        session: ChatSession,
        console: Any,
        make_gate: Callable[[str], Gate] | None = None,
        out: IO[str] | None = None,
        verbose: bool = False,
        save_on_exit: str | None = None,
        history: Path | None = None,
    ):
        self.session = session
        self.console = console
        self.make_gate = make_gate
        self.out = out or sys.stdout
        self.verbose = verbose
        self.save_on_exit = save_on_exit
        self.history = history
        self.reader: LineReader | None = None

    # ------------------------------------------------------------------ input

    def read_message(self) -> str | None:
        """One user message (possibly multi-line); None on Ctrl-D."""
        try:
            line = self._line("[bold cyan]you>[/] ", "you> ")
        except EOFError:
            return None
        if line.lstrip().startswith('"""'):
            body = line.lstrip()[3:]
            lines = []
            while not body.rstrip().endswith('"""'):
                lines.append(body)
                try:
                    body = self._line("[cyan]...[/] ", "... ", "cyan")
                except EOFError:
                    return None
            lines.append(body.rstrip()[:-3])
            return "\n".join(lines).strip("\n")
        parts = []
        while line.endswith("\\"):
            parts.append(line[:-1])
            try:
                line = self._line("[cyan]...[/] ", "... ", "cyan")
            except EOFError:
                return None
        parts.append(line)
        return "\n".join(parts)

    def _line(self, markup: str, plain: str, style: str = "bold cyan") -> str:
        if self.reader is None:
            self.reader = LineReader(self.console, self.history, COMMANDS)
        return self.reader.input(markup, plain, style)

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        c = self.console
        c.print("[dim]/help for commands, Ctrl-D to leave[/]")
        try:
            while True:
                try:
                    msg = self.read_message()
                except KeyboardInterrupt:
                    c.print("\n[dim](Ctrl-D or /exit to leave)[/]")
                    continue
                if msg is None:
                    c.print()
                    break
                if not msg.strip():
                    continue
                if msg.startswith("/"):
                    if self.command(msg.strip()) == "exit":
                        break
                    continue
                self.chat(msg)
        finally:
            if self.reader is not None:
                self.reader.close()
            if self.save_on_exit and self.session.turns:
                self.save(self.save_on_exit)
        return 0

    def chat(self, msg: str) -> TurnResult | None:
        """One turn with Ctrl-C turned into a stop request for its duration."""
        presses = [0]

        def on_sigint(signum: int, frame: Any) -> None:
            presses[0] += 1
            if presses[0] > 1:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        shown = [False]

        def emit(text: str) -> None:
            shown[0] = True
            self.out.write(text)
            self.out.flush()

        result: TurnResult | None = None
        failure = None
        try:
            result = self.session.turn(msg, emit, should_stop=lambda: presses[0] > 0)
        except KeyboardInterrupt:  # a second Ctrl-C, or one during the prompt check
            failure = "[yellow]stopped[/]"
        except PrismError as e:  # the engine failed, or the prompt cannot fit the context
            failure = "[red]error:[/] " + _escape(str(e))
        finally:
            signal.signal(signal.SIGINT, previous)
        if shown[0]:
            self.out.write("\n")
            self.out.flush()
        if failure:
            self.console.print(failure)
        if result is not None:
            self.report(result)
        return result

    def report(self, r: TurnResult) -> None:
        c, gate = self.console, self.session.gate
        if r.outcome == PROMPT_BLOCKED:
            c.print(f"[bold red]blocked prompt:[/] {_escape(labels(r.prompt_verdict, gate))} (not sent to the model)")
        elif r.outcome == RESPONSE_BLOCKED:
            c.print(f"[bold red]response blocked:[/] {_escape(labels(r.response_verdict, gate))} (generation stopped)")
        elif r.outcome == INTERRUPTED:
            c.print("[yellow]stopped[/]")
        pv = r.prompt_verdict
        for w in ([pv] if pv is not None and pv.decision is Decision.WARN else []) + r.warnings[-1:]:
            c.print(f"[yellow]warning ({w.role}):[/] {_escape(labels(w, gate))}")
        if self.verbose:
            self.details(r)

    def details(self, r: TurnResult) -> None:
        t = r.timings
        rate = f", {t.tokens / (t.gen_ms / 1000):.1f} tok/s" if t.gen_ms > 0 and t.tokens else ""
        for name, v in (("prompt", r.prompt_verdict), ("response", r.response_verdict)):
            if v is not None:
                self.console.print(f"[dim]  {name}: {_escape(_scores(v))}[/]")
        self.console.print(
            f"[dim]  p(x) {t.prompt_ms:.1f} ms · generation {t.gen_ms:.0f} ms ({t.tokens} tokens{rate}) · "
            f"q(Y) {t.moderation_ms:.1f} ms in {t.checks} checks[/]"
        )

    # ------------------------------------------------------------------ commands

    def command(self, line: str) -> str | None:
        name, _, arg = line.partition(" ")
        cmd = COMMANDS.get(name)
        if cmd is None:
            self.console.print(f"[red]unknown command[/] {_escape(name)} (/help lists them)")
            return None
        return cmd.run(self, arg.strip())

    def save(self, path: str) -> None:
        from prism_cli.batch import write_transcript

        try:
            n = write_transcript(path, self.session.turns)
        except PrismError as e:
            self.console.print("[red]error:[/] " + _escape(str(e)))
            return
        self.console.print(f"[dim]saved {n} turns to {_escape(path)}[/]")

    def switch_policy(self, name: str) -> None:
        c = self.console
        if not name:
            g = self.session.gate
            c.print(f"policy: {_escape(g.policy.name) if g else 'none (moderation is off)'}")
            return
        if self.make_gate is None:
            c.print("[red]moderation is off (--no-moderation): /policy has no effect[/]")
            return
        try:
            gate = self.make_gate(name)
        except PrismError as e:
            c.print("[red]error:[/] " + _escape(str(e)) + " (policy unchanged)")
            return
        self.session.gate = gate
        c.print(f"[dim]policy {_escape(gate.policy.name)}, moderator {_escape(gate.name)}[/]")
        warning = unscored_notice(gate)
        if warning:
            c.print(f"[yellow]{_escape(warning)}[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _scores(v: Verdict) -> str:
    top = sorted(v.scores.items(), key=lambda kv: -kv[1])[:3]
    s = ", ".join(f"{k}={p:.2f}" for k, p in top)
    err = f" error: {v.error}" if v.error else ""
    return f"{v.decision.value} unsafe={v.unsafe:.2f} [{s}] {v.ms:.1f} ms{err}"


# ---------------------------------------------------------------------- the commands


@repl_command("/help", "/help", "this help")
def _help(repl: Repl, arg: str) -> None:
    width = max(len(c.usage) for c in COMMANDS.values()) + 2
    lines = [INTRO, *(f"  {c.usage:<{width}}{c.help}" for c in COMMANDS.values())]
    repl.console.print(_escape("\n".join(lines)))


@repl_command("/policy", "/policy NAME", "switch policy (a shipped name or a YAML file)")
def _policy(repl: Repl, arg: str) -> None:
    repl.switch_policy(arg)


@repl_command("/reset", "/reset", "forget the conversation")
def _reset(repl: Repl, arg: str) -> None:
    repl.session.reset()
    repl.console.print("[dim]conversation cleared[/]")


@repl_command("/save", "/save FILE", "write the transcript (JSONL, with verdicts and timings)")
def _save(repl: Repl, arg: str) -> None:
    if not arg:
        repl.console.print("[red]usage:[/] /save FILE")
    else:
        repl.save(arg)


@repl_command("/verbose", "/verbose", "show scores and timings after each turn (toggle)")
def _verbose(repl: Repl, arg: str) -> None:
    repl.verbose = not repl.verbose
    repl.console.print(f"[dim]verbose {'on' if repl.verbose else 'off'}[/]")


@repl_command("/why", "/why", "why the last turn was flagged: the categories and the words that drove them")
def _why(repl: Repl, arg: str) -> None:
    from prism_cli.explain import why

    turn = repl.session.turns[-1] if repl.session.turns else None
    gate = repl.session.gate
    if turn is None or gate is None or turn.prompt_verdict is None:
        repl.console.print("[dim]nothing checked yet: /why explains the last turn[/]")
        return
    if turn.outcome == RESPONSE_BLOCKED and turn.response_verdict is not None:
        text = why(gate, turn.response_verdict, None)  # the withheld reply is never searched or shown
    elif turn.prompt_verdict.decision is Decision.ALLOW and turn.response_verdict is not None \
            and turn.response_verdict.decision is not Decision.ALLOW:
        text = why(gate, turn.response_verdict, turn.response)  # a warned reply, shown in full
    else:
        text = why(gate, turn.prompt_verdict, turn.prompt)
    repl.console.print(_escape(text))


@repl_command("/allow", "/allow", "allow-list your last prompt: it was fine (a keyed hash is kept, not the text)")
def _allow(repl: Repl, arg: str) -> None:
    from prism_cli import allowlist

    turn = repl.session.turns[-1] if repl.session.turns else None
    if turn is None:
        repl.console.print("[dim]nothing to allow yet: /allow vouches for your last prompt[/]")
        return
    _, new = allowlist.add(turn.prompt, role="prompt")
    if repl.session.gate is not None:
        repl.session.gate.allowed = allowlist.gate_matcher()
    repl.console.print(f"[dim]{'allow-listed' if new else 'already allow-listed'}: your last prompt "
                       "will be allowed from now on (prism allow list)[/]")


@repl_command("/exit", "/exit", "leave (or Ctrl-D); Ctrl-C stops a reply without leaving")
def _exit(repl: Repl, arg: str) -> str:
    return "exit"


COMMANDS["/quit"] = Command("/quit", "the same as /exit", _exit)
