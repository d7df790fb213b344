"""``ltk chat MODEL_OR_RUN``: talk to a model in the terminal.

The model's own chat template renders the conversation and generation stops at its end-of-turn ids
(``generation_config.json``, else the tokenizer's EOS), so what you see is what the model does in
``ltk eval`` and after export. Answers stream token by token (transformers' TextIteratorStreamer, with
generation in a worker thread). When the target language is known (a run folder's recipe names its build
folder, or ``--build``), ltk's code-switch detector labels every word of each answer and the words outside
the target language are marked: the study's 2-5% of switched answers, visible while you talk.
"""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ltk.errors import UsageError
from ltk.ship.source import end_of_turn_ids, load_source, resolve_source

log = logging.getLogger(__name__)
EXIT_COMMANDS = ("/exit", "/quit", "/bye")
HELP = "commands: /reset (forget the conversation), /system TEXT (set the system prompt), /exit"


@dataclass
class Sampling:
    """Decoding settings; greedy unless a temperature above 0 is given."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0

    def generate_kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False, "repetition_penalty": self.repetition_penalty}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
        }


@dataclass
class Answer:
    text: str
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ChatModel:
    """One loaded model with its template and end-of-turn ids."""

    name: str
    model: Any
    tokenizer: Any
    eot_ids: list[int]
    detector: Any = None
    language: str | None = None

    @classmethod
    def load(cls, name: str, *, device: str | None = None, build: str | None = None) -> ChatModel:
        from ltk.evaluate.loading import pick_device

        source = resolve_source(name)
        model, tokenizer = load_source(source, device=pick_device(device))
        detector, language = _detector(source, build)
        return cls(
            source.label, model, tokenizer, end_of_turn_ids(source.folder, tokenizer), detector, language
        )

    def encode(self, messages: list[dict[str, str]]) -> Any:
        from ltk.evaluate.generation import render_prompt

        prompt = render_prompt(self.tokenizer, messages)
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        # The template writes its own special tokens (BOS included where it has one).
        return self.tokenizer(prompt, return_tensors="pt", add_special_tokens=not templated).to(
            self.model.device
        )

    def stream(self, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]:
        """Yield the answer's text as it is generated; stops at an end-of-turn id."""
        import torch
        from transformers import TextIteratorStreamer

        enc = self.encode(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        torch.manual_seed(sampling.seed)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_ids[0]
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with torch.no_grad():
                    self.model.generate(
                        **enc,
                        streamer=streamer,
                        max_new_tokens=sampling.max_new_tokens,
                        eos_token_id=self.eot_ids or None,
                        pad_token_id=pad,
                        **sampling.generate_kwargs(),
                    )
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise errors[0]

    def answer(
        self, messages: list[dict[str, str]], sampling: Sampling, echo: Callable[[str], None] | None = None
    ) -> Answer:
        start = time.perf_counter()
        pieces = []
        for piece in self.stream(messages, sampling):
            pieces.append(piece)
            if echo is not None:
                echo(piece)
        seconds = time.perf_counter() - start
        text = "".join(pieces).strip()
        return Answer(text, len(self.tokenizer(text, add_special_tokens=False).input_ids), seconds)

    def non_target_words(self, text: str) -> tuple[list[str], int]:
        """(words outside the target language, words in all) by ltk's code-switch detector."""
        if self.detector is None:
            return [], 0
        from ltk.evaluate.codeswitch import NON_TARGET

        labelled = [pair for line in text.splitlines() for pair in self.detector.label_line(line)]
        return [w for w, label in labelled if label in NON_TARGET], len(labelled)

    def marked(self, text: str, style: Callable[[str], str]) -> str:
        """``text`` with every word the detector puts outside the target language passed through ``style``."""
        if self.detector is None:
            return text
        from ltk.evaluate.codeswitch import NON_TARGET, WORD_RE

        out_lines = []
        for line in text.split("\n"):
            flags = [label in NON_TARGET for _, label in self.detector.label_line(line)]
            words = WORD_RE.findall(line)
            pieces = WORD_RE.split(line)  # text between words: len(words) + 1 pieces
            if len(flags) != len(words):  # the detector saw the line differently: leave it unmarked
                out_lines.append(line)
                continue
            marked = [pieces[0]]
            for word, flag, after in zip(words, flags, pieces[1:], strict=True):
                marked += [style(word) if flag else word, after]
            out_lines.append("".join(marked))
        return "\n".join(out_lines)


def _detector(source: Any, build: str | None) -> tuple[Any, str | None]:
    """The code-switch detector for the model's target language, when ltk can tell which that is."""
    from ltk.evaluate.codeswitch import detector_for_build
    from ltk.evaluate.data import language_info

    if build is None:
        recipe = source.recipe()
        if recipe is None:
            return None, None
        build = recipe.ltk.build_dir
    folder = Path(build)
    if not (folder / "corpus" / "train").is_dir():
        message = f"{folder}/corpus/train is missing: code-switched words cannot be marked"
        if source.run_dir is None:  # the user named it with --build: that is a usage error
            raise UsageError(message + "; give the language's build folder (what `ltk build-langpack` wrote)")
        log.warning(message)
        return None, None
    info = language_info(folder)
    return detector_for_build(folder, info), info.get("name")


# --------------------------------------------------------------------------------------------- sessions
@dataclass
class Session:
    """One conversation per model (with --compare, each model keeps its own history)."""

    models: list[ChatModel]
    sampling: Sampling
    system: str | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    color: bool = False
    histories: list[list[dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        start = [{"role": "system", "content": self.system}] if self.system else []
        self.histories = [list(start) for _ in self.models]

    def style(self, word: str) -> str:
        if self.color:
            import click

            return click.style(word, fg="yellow", underline=True)
        return f"«{word}»"

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def turn(self, prompt: str) -> list[Answer]:
        """One user message to every model; answers shown (streamed for one model, side by side for two)."""
        for history in self.histories:
            history.append({"role": "user", "content": prompt})
        if len(self.models) == 1:
            model = self.models[0]
            answer = model.answer(self.histories[0], self.sampling, echo=self.write)
            self.write("\n")
            self._footer(model, answer)
            answers = [answer]
        else:
            answers = [m.answer(h, self.sampling) for m, h in zip(self.models, self.histories, strict=True)]
            self.write(self.side_by_side(answers) + "\n")
            for model, answer in zip(self.models, answers, strict=True):
                self._footer(model, answer)
        for history, answer in zip(self.histories, answers, strict=True):
            history.append({"role": "assistant", "content": answer.text})
        return answers

    def _footer(self, model: ChatModel, answer: Answer) -> None:
        switched, total = model.non_target_words(answer.text)
        speed = f"{answer.tokens} tokens, {answer.tokens_per_second:.1f} tokens/s"
        if model.detector is None:
            self.write(f"  [{model.name}: {speed}]\n")
            return
        words = ", ".join(self.style(w) for w in dict.fromkeys(switched)) or "none"
        self.write(
            f"  [{model.name}: {speed}; {len(switched)} of {total} words not {model.language or 'target'}: {words}]\n"
        )

    def side_by_side(self, answers: list[Answer]) -> str:
        width = max(30, (shutil.get_terminal_size((120, 24)).columns - 3) // 2)
        columns = []
        for model, answer in zip(self.models, answers, strict=True):
            lines = [model.name, "-" * min(width, len(model.name))]
            for paragraph in (model.marked(answer.text, lambda w: f"«{w}»")).split("\n"):
                lines += textwrap.wrap(paragraph, width) or [""]
            columns.append(lines)
        height = max(len(c) for c in columns)
        rows = []
        for i in range(height):
            left = columns[0][i] if i < len(columns[0]) else ""
            right = columns[1][i] if i < len(columns[1]) else ""
            rows.append(f"{left:<{width}} | {right}".rstrip())
        return "\n".join(rows)

    def repl(self, read: Callable[[], str | None]) -> int:
        """The interactive loop: ``read`` returns a line, or None at the end of input. Returns turns taken."""
        turns = 0
        while True:
            self.write(">>> ")
            line = read()
            if line is None:
                self.write("\n")
                return turns
            line = line.strip()
            if not line:
                continue
            if line in EXIT_COMMANDS:
                return turns
            if line == "/reset":
                self.reset()
                self.write("(conversation forgotten)\n")
                continue
            if line.startswith("/system"):
                self.system = line[len("/system") :].strip() or None
                self.reset()
                self.write(f"(system prompt {'set' if self.system else 'removed'}; conversation forgotten)\n")
                continue
            if line.startswith("/"):
                self.write(f"unknown command {line.split()[0]}; {HELP}\n")
                continue
            self.turn(line)
            turns += 1
