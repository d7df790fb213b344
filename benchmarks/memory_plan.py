"""The memory plan (``ltk train --dry-run``) against measured peaks, on this CPU.

    python benchmarks/memory_plan.py [--model embedded:smollm2-135m] [--seq 256] [--batch 2]

For each configuration (LoRA as the recipe trains stage 1, LoRA without whole modules, full fine-tuning;
each with and without gradient checkpointing) a fresh process imports torch/transformers/peft, reads its
resident memory, then loads the model as ltk's plan says, builds AdamW over the trained parameters and
runs two training steps; the peak resident memory (VmHWM, reset through /proc/self/clear_refs once the
model is loaded, so the checkpoint file mapped during loading does not count) minus the memory before the
model loaded is the measured peak of a step. The naive baseline is
the rule of thumb "16 bytes per parameter" (fp32 weights, gradients and Adam states; no activations).
Results go to benchmarks/results/memory_plan.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

_MEASURE = textwrap.dedent(
    """
    import json, sys, torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    args = json.loads(sys.argv[1])
    torch.manual_seed(0)
    before = rss("VmRSS:")
    model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32)
    import gc; gc.collect()
    # Loading maps the checkpoint file too (counted in RSS for a moment): the plan is about training, so
    # the peak is reset to the resident set once the model is in memory.
    open("/proc/self/clear_refs", "w").write("5")
    if args["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if args["adapter"] != "full":  # exactly the adapter ltk's stages build
        from ltk.recipe.load import StageSettings
        from ltk.train.stages import lora_config
        model = get_peft_model(model, lora_config(StageSettings(**args["settings"]), model.config))
    model.train()  # as the Trainer does (gradient checkpointing is active in training mode only)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (args["batch"], args["seq"]))
    for _ in range(2):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    print(json.dumps({"peak": rss("VmHWM:") - before}))
    """
)


def measure(
    model: str,
    *,
    adapter: str,
    r: int,
    targets: list[str],
    save: list[str],
    seq: int,
    batch: int,
    checkpointing: bool,
    settings: dict,
) -> int:
    payload = json.dumps(
        {
            "model": model,
            "adapter": adapter,
            "r": r,
            "targets": targets,
            "save": save,
            "seq": seq,
            "batch": batch,
            "checkpointing": checkpointing,
            "settings": settings,
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, payload], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"]


def compare(model_dir: str, settings, *, checkpointing: bool) -> dict:
    """Estimated vs measured peak for one stage configuration (CPU, fp32)."""
    from ltk.train.memory import estimate, model_config
    from ltk.train.weights import WeightsPlan

    plan = WeightsPlan("float32", None, "float32", "float32")
    est = estimate(model_config(model_dir), settings, plan, gradient_checkpointing=checkpointing, cuda=False)
    measured = measure(
        model_dir,
        adapter=settings.adapter,
        r=settings.lora_r,
        targets=list(settings.lora_target_modules),
        save=list(settings.lora_modules_to_save),
        seq=settings.sequence_len,
        batch=settings.micro_batch_size,
        checkpointing=checkpointing,
        settings=settings.as_dict(),
    )
    return {"estimated": est.peak, "measured": measured, "error": round(est.peak / measured - 1, 4)}


def reestimate(record: dict, configs: dict) -> list[dict]:
    """Recorded rows with the plan recomputed by the current estimator (the measurements are kept)."""
    from ltk.assets import resolve_model
    from ltk.train.memory import estimate, model_config
    from ltk.train.weights import WeightsPlan

    plan = WeightsPlan("float32", None, "float32", "float32")
    dirs: dict[str, str] = {}
    rows = []
    for row in record["rows"]:
        model = row["model"]
        if model not in dirs:
            dirs[model] = tiny_model() if model == "tiny" else resolve_model(model)
        settings = replace(
            configs[row["config"]], sequence_len=record["seq"], micro_batch_size=record["batch"]
        )
        est = estimate(
            model_config(dirs[model]), settings, plan, gradient_checkpointing=row["checkpointing"], cuda=False
        )
        rows.append({**row, "estimated": est.peak, "error": round(est.peak / row["measured"] - 1, 4)})
    return rows


def tiny_model() -> str:
    """A 2-layer, 64-wide random LLaMA with SmolLM2's vocabulary size, saved once in a temp folder."""
    import tempfile

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(tempfile.mkdtemp(prefix="ltk-memplan-tiny-"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return str(out)


def cpu_flags() -> str:
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line
            break
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return " ".join(f for f in wanted if f" {f}" in flags) or "none of " + ", ".join(wanted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model",
        action="append",
        help="model folder or embedded name; 'tiny' = a 2-layer, 64-wide random LLaMA with SmolLM2's "
        "vocabulary [default: embedded:smollm2-135m and tiny]",
    )
    ap.add_argument(
        "--reestimate",
        action="store_true",
        help="keep the recorded measurements, recompute the plan's estimates (after changing the estimator)",
    )
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    from ltk.assets import resolve_model
    from ltk.recipe.load import load_recipe, stage_settings

    recipe = load_recipe(REPO / "recipes" / "ny.yml")
    base = replace(stage_settings(recipe, "cpt"), sequence_len=args.seq, micro_batch_size=args.batch)
    configs = {
        "lora r64 + embeddings (stage 1 default)": base,
        "lora r16 (stage 2 default)": replace(base, lora_r=16, lora_modules_to_save=[]),
        "full fine-tuning": replace(base, adapter="full"),
    }
    from ltk.train.memory import count_parameters, model_config

    rows = []
    if args.reestimate:
        rows = reestimate(
            json.loads((REPO / "benchmarks" / "results" / "memory_plan.json").read_text()), configs
        )
    for model in [] if args.reestimate else args.model or ["embedded:smollm2-135m", "tiny"]:
        model_dir = tiny_model() if model == "tiny" else resolve_model(model)
        total = count_parameters(model_config(model_dir), base).total
        for name, settings in configs.items():
            for ckpt in (False, True):
                result = compare(model_dir, settings, checkpointing=ckpt)
                naive = 16 * total if settings.adapter == "full" else 4 * total
                result.update(
                    model=model,
                    config=name,
                    checkpointing=ckpt,
                    naive=naive,
                    naive_error=round(naive / result["measured"] - 1, 4),
                )
                rows.append(result)
                print(json.dumps(result), flush=True)
    record = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {cpu_flags()}",
        "seq": args.seq,
        "batch": args.batch,
        "rows": rows,
    }
    out = REPO / "benchmarks" / "results"
    (out / "memory_plan.json").write_text(json.dumps(record, indent=2) + "\n")
    mib = 1024**2
    lines = [
        "# Memory plan vs measured peak (CPU, fp32)",
        "",
        f"{record['date']}, {record['machine']}; micro-batch {args.batch} x {args.seq} tokens.",
        "Measured: peak RSS of two AdamW steps in a fresh process, minus the RSS before the model loaded.",
        "Naive: 16 bytes/parameter for full fine-tuning, 4 bytes/parameter (the frozen weights) for LoRA.",
        "",
        "| model | configuration | checkpointing | measured MiB | plan MiB | plan error | naive MiB | naive error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['config']} | {r['checkpointing']} | {r['measured'] / mib:.0f} | {r['estimated'] / mib:.0f} | "
            f"{r['error']:+.1%} | {r['naive'] / mib:.0f} | {r['naive_error']:+.1%} |"
        )
    (out / "memory_plan.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
