"""``evaluate_model`` and ``ltk eval`` end to end on a tiny random LLaMA and a small real build folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from _eval_build import make_build
from click.testing import CliRunner

from ltk.cli import main
from ltk.errors import LtkError, UsageError, ValidationError
from ltk.evaluate.run import evaluate_model


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def base_eval(
    tiny_llama_dir: Path, build_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("runs") / "tiny"
    result = evaluate_model(
        tiny_llama_dir,
        build_dir,
        run,
        "bpb,codeswitch,chrf,premium",
        max_new_tokens=12,
        context_length=64,
        stride=32,
    )
    return run, result


def test_eval_writes_every_metric_with_its_method(base_eval: tuple[Path, dict]) -> None:
    run, result = base_eval
    path = run / "eval" / "base.json"
    assert json.loads(path.read_text()) == result
    assert not list((run / "eval").glob("*.tmp-*"))
    met = result["metrics"]
    assert result["meta"]["stage"] == "base" and result["meta"]["language"]["name"] == "Chichewa"
    for side in ("target", "english"):
        b = met["bpb"][side]
        # A random model over a 49k vocabulary: about ln(49152) nats per token.
        assert b["nll_nats"] / b["tokens"] == pytest.approx(math.log(49152), rel=0.1)
        assert b["bits_per_byte"] == pytest.approx(b["nll_nats"] / (math.log(2) * b["bytes"]))
        assert b["documents"] == 2 and b["method"]["context_length"] == 64 and b["method"]["stride"] == 32
    cs = met["codeswitch"]
    assert cs["counts"]["answers"] + cs["counts"]["empty_answers"] == 4
    assert cs["method"]["target_cld2_codes"] == ["nya", "ny"] or "ny" in cs["method"]["target_cld2_codes"]
    for d in ("to_target", "to_english"):
        assert 0 <= met["chrf"][d]["chrf"] <= 100
        assert met["chrf"]["sets"]["bible-verses-heldout"][d]["pairs"] == 6
    assert met["premium"]["pairs"] == 6 and met["premium"]["premium"] > 1
    # Every number with its interval and the unit resampled, from per-item scores stored beside it.
    for side in ("target", "english"):
        b = met["bpb"][side]
        iv = b["intervals"]["bits_per_byte"]
        assert iv["unit"] == "documents" and iv["n"] == 2 and iv["ci"][0] <= b["bits_per_byte"] <= iv["ci"][1]
        assert sum(i["nll"] for i in b["items"]) == pytest.approx(b["nll_nats"])
    assert met["codeswitch"]["intervals"]["answer_rate"]["method"] == "wilson"
    assert len(met["codeswitch"]["items"]) == 4
    for d in ("to_target", "to_english"):
        iv = met["chrf"][d]["intervals"]["chrf"]
        assert (
            iv["unit"] == "segments" and iv["n"] == 6 and iv["ci"][0] <= met["chrf"][d]["chrf"] <= iv["ci"][1]
        )
        assert len(met["chrf"]["sets"]["bible-verses-heldout"][d]["items"]) == 6
    assert met["premium"]["intervals"]["premium"]["unit"] == "pairs"
    samples = [json.loads(x) for x in (run / "eval" / "base.samples.jsonl").read_text().splitlines()]
    assert sum(s["kind"] == "answer" for s in samples) == 4
    assert sum(s["kind"] == "translation" for s in samples) == 12


def test_eval_is_deterministic(tiny_llama_dir: Path, build_dir: Path, tmp_path: Path, base_eval) -> None:
    result = evaluate_model(
        tiny_llama_dir, build_dir, tmp_path, "bpb,codeswitch", max_new_tokens=12, context_length=64, stride=32
    )
    assert result["metrics"]["bpb"] == base_eval[1]["metrics"]["bpb"]
    assert result["metrics"]["codeswitch"] == base_eval[1]["metrics"]["codeswitch"]


def test_missing_and_empty_eval_sets_fail_before_loading(build_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "ny"
    shutil.copytree(build_dir, broken)
    shutil.rmtree(broken / "corpus" / "heldout_english")
    (broken / "instructions" / "heldout_prompts.jsonl").write_text("\n")
    with pytest.raises(ValidationError) as err:
        evaluate_model("/nonexistent/model", broken, tmp_path / "run", "bpb,codeswitch")
    text = str(err.value)
    assert "2 problems" in text and "heldout_english" in text and "heldout_prompts.jsonl is empty" in text
    assert not (tmp_path / "run").exists()
    with pytest.raises(UsageError, match="does not exist"):
        evaluate_model("x", tmp_path / "nope", tmp_path / "run", "bpb")


def test_model_that_cannot_load(build_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(LtkError, match="cannot load model"):
        evaluate_model(bad, build_dir, tmp_path / "run", "bpb")
    with pytest.raises(UsageError, match="no config.json"):
        evaluate_model(tmp_path, build_dir, tmp_path / "run", "bpb")
    assert not (tmp_path / "run" / "eval").exists()


def test_cli_eval_and_errors(tiny_llama_dir: Path, build_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "runs" / "cli"
    res = runner.invoke(
        main,
        [
            "eval",
            str(tiny_llama_dir),
            "--build",
            str(build_dir),
            "--out",
            str(out),
            "--metrics",
            "bpb,premium",
            "--stage",
            "sft",
            "--context-length",
            "64",
            "--max-docs",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "bits/byte target" in res.output and "tokenizer premium" in res.output
    data = json.loads((out / "eval" / "sft.json").read_text())
    assert data["metrics"]["bpb"]["target"]["documents"] == 1
    res = runner.invoke(
        main,
        ["eval", str(tiny_llama_dir), "--build", str(build_dir), "--out", str(out), "--metrics", "bpb,speed"],
    )
    assert res.exit_code == 2 and "unknown metric(s) ['speed']" in res.output
    res = runner.invoke(
        main,
        ["eval", str(tiny_llama_dir), "--build", str(build_dir), "--out", str(out), "--metrics", "judge"],
    )
    assert res.exit_code == 2 and "--judge-model" in res.output


@pytest.mark.slow
def test_callback_writes_stage_and_step_json(tiny_llama_dir: Path, build_dir: Path, tmp_path: Path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from ltk.evaluate.callbacks import LtkEvalCallback
    from ltk.evaluate.metrics import EvalOptions

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    ids = tok(["Mulungu ndi wabwino."] * 8)["input_ids"]
    data = Dataset.from_dict({"input_ids": ids, "labels": ids})
    run = tmp_path / "runs" / "cb"
    options = EvalOptions(max_docs=1, context_length=32)
    callback = LtkEvalCallback(build_dir, run, stage="cpt", every_n_steps=2, options=options)
    args = TrainingArguments(
        output_dir=str(run / "cpt"),
        max_steps=4,
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=100,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[callback])
    trainer.train()
    names = sorted(p.name for p in (run / "eval").glob("*.json"))
    assert names == ["cpt-step2.json", "cpt-step4.json", "cpt.json"]
    final = json.loads((run / "eval" / "cpt.json").read_text())
    assert final["meta"]["global_step"] == 4 and "bpb" in final["metrics"]
    step2 = json.loads((run / "eval" / "cpt-step2.json").read_text())
    assert (
        step2["metrics"]["bpb"]["target"]["bits_per_byte"]
        != final["metrics"]["bpb"]["target"]["bits_per_byte"]
    )


def test_local_judge_model_and_judge_cache(tiny_llama_dir: Path, build_dir: Path, tmp_path: Path) -> None:
    from ltk.evaluate.judge import LocalJudge, make_backend

    judge = make_backend(None, str(tiny_llama_dir))
    assert isinstance(judge, LocalJudge)
    judge.max_tokens = 6
    kw = dict(max_prompts=2, max_new_tokens=4, judge=judge)
    first = evaluate_model(tiny_llama_dir, build_dir, tmp_path, "judge", **kw)["metrics"]["judge"]
    assert first["answers"] == 2 and first["new_judgements"] == 2 and judge.requests_made == 2
    assert first["tokens"]["prompt"] > 100 and first["tokens"]["completion"] > 0
    again = evaluate_model(tiny_llama_dir, build_dir, tmp_path, "judge", **kw)["metrics"]["judge"]
    assert again["cached_judgements"] == 2 and judge.requests_made == 2
    samples = (tmp_path / "eval" / "base.samples.jsonl").read_text().splitlines()
    assert len(samples) == 2  # judge-only: answers are generated without the code-switch metric
