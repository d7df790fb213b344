"""Export time and file size per format, and `ltk chat` generation speed against a plain `generate` call,
on the embedded SmolLM2-135M, in the same run.

    python benchmarks/export_chat.py [--chat-only]   (--chat-only keeps the recorded export rows)

Export: `ltk export embedded:smollm2-135m` as hf (float32, the base's dtype), gguf f16 / q8_0 (each with
its round-trip check, timed apart from the conversion) and ollama (q8_0). Chat: the same greedy answers to
the same prompts, once through ltk's streaming path (ChatModel.answer: TextIteratorStreamer + worker
thread + end-of-turn stop) and once through one plain `model.generate` call; tokens per second of each.
Writes benchmarks/results/export_chat.{json,md}.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["Moni! Muli bwanji?", "What is water?", "Tell me a short story about a child and a river."]
MAX_NEW = 48


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = re.search(r"model name\s*:\s*(.+)", text)
    flags = set(re.search(r"flags\s*:\s*(.+)", text).group(1).split()) if "flags" in text else set()
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model.group(1) if model else '?'}; flags: {' '.join(wanted) or 'none of avx2/avx512/amx'}"


def bench_export(work: Path) -> list[dict]:
    from ltk.ship.export import export_model

    rows = []
    for fmt, quant in (("hf", "-"), ("gguf", "f16"), ("gguf", "q8_0"), ("ollama", "q8_0")):
        out = work / f"{fmt}-{quant}"
        start = time.perf_counter()
        result = export_model("embedded:smollm2-135m", out, fmt=fmt, quant=quant if quant != "-" else "f16")
        seconds = time.perf_counter() - start
        big = max(result.files.items(), key=lambda kv: kv[1]["bytes"])
        rows.append(
            {
                "format": fmt,
                "quant": quant,
                "seconds_total": round(seconds, 1),
                "main_file": big[0],
                "mb": round(big[1]["bytes"] / 1e6, 1),
                "round_trip": result.round_trip,
            }
        )
        shutil.rmtree(out)
    return rows


def bench_chat() -> dict:
    from ltk.ship.chat import ChatModel, Sampling

    model = ChatModel.load("embedded:smollm2-135m", device="cpu")
    sampling = Sampling(max_new_tokens=MAX_NEW)

    def plain(messages: list[dict[str, str]]) -> tuple[str, int, float]:
        """One plain generate call, decoded afterwards."""
        enc = model.encode(messages)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.model.generate(
                **enc,
                max_new_tokens=MAX_NEW,
                do_sample=False,
                eos_token_id=model.eot_ids,
                pad_token_id=model.eot_ids[0],
            )
        seconds = time.perf_counter() - start
        text = model.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        return text, len(model.tokenizer(text, add_special_tokens=False).input_ids), seconds

    def streamed(messages: list[dict[str, str]]) -> tuple[str, int, float]:
        answer = model.answer(messages, sampling)
        return answer.text, answer.tokens, answer.seconds

    plain([{"role": "user", "content": "warm up"}])  # first call pays one-off costs: not counted
    totals = {"plain": [0, 0.0], "ltk": [0, 0.0]}
    same = True
    for i, prompt in enumerate(PROMPTS * 2):  # two rounds, the order alternating, on a shared machine
        messages = [{"role": "user", "content": prompt}]
        order = [("plain", plain), ("ltk", streamed)]
        texts = {}
        for name, fn in order if i % 2 == 0 else reversed(order):
            text, tokens, seconds = fn(messages)
            texts[name] = text
            totals[name][0] += tokens
            totals[name][1] += seconds
        same &= texts["plain"] == texts["ltk"]
    plain_rate = totals["plain"][0] / totals["plain"][1]
    ltk_rate = totals["ltk"][0] / totals["ltk"][1]
    return {
        "prompts": len(PROMPTS),
        "rounds": 2,
        "max_new_tokens": MAX_NEW,
        "plain_generate_tokens_per_s": round(plain_rate, 2),
        "ltk_chat_tokens_per_s": round(ltk_rate, 2),
        "ratio": round(ltk_rate / plain_rate, 3),
        "same_text": same,
    }


def main() -> None:
    previous = ROOT / "benchmarks" / "results" / "export_chat.json"
    if "--chat-only" in sys.argv and previous.is_file():  # keep the recorded export rows
        export_rows = json.loads(previous.read_text())["export"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            export_rows = bench_export(Path(tmp))
    chat = bench_chat()
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads; {cpu_flags()}; "
        f"load average {os.getloadavg()[0]:.1f} at the end (a shared machine)",
        "torch": torch.__version__,
        "export": export_rows,
        "chat": chat,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "export_chat.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Export and chat on SmolLM2-135M",
        "",
        f"Date {result['date']}; {result['machine']}; torch {result['torch']}.",
        "",
        "| format | quant | file | MB | seconds (load, save, convert, round trip, card) | round trip |",
        "|---|---|---|---|---|---|",
    ]
    for r in export_rows:
        rt = r["round_trip"]
        check = (
            f"ids same {rt['same_token_ids']}, max log-prob diff {rt['max_abs_logprob_diff']:.2g} "
            f"(tol. {rt['tolerance']:g}), top-1 {rt['top1_agreement']:.1%}"
            if rt
            else "-"
        )
        md.append(
            f"| {r['format']} | {r['quant']} | {r['main_file']} | {r['mb']} | {r['seconds_total']} | {check} |"
        )
    md += [
        "",
        f"Chat ({chat['prompts']} prompts x {chat['rounds']} rounds, order alternating, after a warm-up; greedy, "
        f"up to {chat['max_new_tokens']} new tokens): plain `generate` "
        f"{chat['plain_generate_tokens_per_s']} tokens/s, `ltk chat`'s streaming path {chat['ltk_chat_tokens_per_s']} "
        f"tokens/s: {chat['ratio']}x (target: no slower than 0.9x); same text: {chat['same_text']}.",
    ]
    (out / "export_chat.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
