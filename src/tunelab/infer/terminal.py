"""The terminal chat: multi-turn, streaming, with /clear, /system and /exit."""

from __future__ import annotations

from typing import TextIO

from tunelab.errors import TuneLabError
from tunelab.infer.engine import ChatEngine
from tunelab.infer.request import ChatRequest, Choice

HELP = "commands: /clear resets the history, /system TEXT sets the system prompt, /exit quits"


class TerminalChat:
    """One conversation with ``engine`` over text streams (stdin/stdout in the CLI)."""

    def __init__(self, engine: ChatEngine, out: TextIO, model: str | None = None,
                 system: str | None = None):
        self.engine = engine
        self.out = out
        self.model = model
        self.system = system
        self.history: list[dict] = []

    def messages(self, text: str) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history + [{"role": "user", "content": text}]

    def ask(self, text: str, show_reasoning: bool = True) -> Choice:
        """Stream the answer to ``text`` to ``out`` and add the turn to the history."""
        request = ChatRequest(messages=self.messages(text), model=self.model)
        answer = Choice(0)
        thinking = False
        for delta in self.engine.stream(request):
            if delta.reasoning and show_reasoning:
                if not thinking:
                    self.out.write("[thinking] ")
                    thinking = True
                self.out.write(delta.reasoning)
            if delta.content:
                if thinking:
                    self.out.write("\n[answer] ")
                    thinking = False
                self.out.write(delta.content)
            self.out.flush()
            answer.add(delta)
        self.out.write("\n")
        self.history += [{"role": "user", "content": text}, _assistant_turn(answer)]
        return answer

    def command(self, line: str) -> bool:
        """Handle a /command; False when the chat should end."""
        name, _, rest = line.partition(" ")
        if name in ("/exit", "/quit"):
            return False
        if name == "/clear":
            self.history = []
            self.out.write("history cleared\n")
        elif name == "/system":
            self.system = rest.strip() or None
            self.history = []
            self.out.write(f"system prompt {'set' if self.system else 'reset'}; history cleared\n")
        else:
            self.out.write(f"unknown command {name}; {HELP}\n")
        return True

    def run(self, lines: TextIO) -> None:
        """Read questions from ``lines`` until /exit or end of input."""
        self.out.write(f"chatting with {self.model or self.engine.default_model}; {HELP}\n")
        while True:
            self.out.write("User: ")
            self.out.flush()
            line = lines.readline()
            if not line:
                self.out.write("\n")
                return
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not self.command(text):
                    return
                continue
            self.out.write("Assistant: ")
            try:
                self.ask(text)
            except TuneLabError as exc:  # a too-long conversation must not end the session
                self.out.write(f"\n{exc.kind}: {exc}\n")


def _assistant_turn(answer: Choice) -> dict:
    turn: dict = {"role": "assistant", "content": answer.content}
    if answer.reasoning:
        turn["reasoning_content"] = answer.reasoning
    if answer.tool_calls:
        turn["tool_calls"] = answer.tool_calls
    return turn
