"""`ltk export` and `ltk chat` on real models: a tiny run trained by ltk (SmolLM2's tokenizer, LLaMA
architecture, its SFT stage saved as a LoRA adapter), a tiny random model carrying the real Llama-3.1
tokenizer, and (slow) the embedded SmolLM2-135M itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from _train_data import make_recipe, write_build
from click.testing import CliRunner

from conftest import FAMILIES
from ltk.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """runs/ny trained by ltk: cpt merged, sft kept as a LoRA adapter on top of it."""
    from ltk.train.run import train_recipe

    root = tmp_path_factory.mktemp("ship-run")
    write_build(root)
    recipe = make_recipe(
        root,
        tiny_llama_dir,
        **{"max_steps": 2, "ltk.stages.sft.max_steps": 2, "ltk.stages.sft.save": "adapter"},
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.chdir(root)  # the recipe names build/ny relative to the root
    try:
        train_recipe(recipe, stage="all")
    finally:
        mp.undo()
    return root / "runs" / "ny"


def _logits(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(ids).logits


def _front_matter(readme: Path) -> dict:
    return yaml.safe_load(readme.read_text().split("---")[1])


# ------------------------------------------------------------------------------------------------- hf
def test_export_hf_of_a_run_merges_the_adapter_of_its_last_stage(adapter_run: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "ny-hf"
    res = CliRunner().invoke(main, ["export", str(adapter_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"exported (hf) to {out}" in res.output
    record = json.loads((adapter_run / "sft" / "final" / "ltk_stage.json").read_text())
    assert record["saved_as"] == "adapter"
    # The export is the adapter merged into what it was trained on (stage 1's merged model).
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("Mwana anapita kunyumba. The child went home.", return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(adapter_run / "cpt" / "final", dtype=torch.float32)
    peft = PeftModel.from_pretrained(base, str(adapter_run / "sft" / "final")).eval()
    with torch.no_grad():
        want = peft(ids).logits
    assert torch.allclose(_logits(out, ids), want, atol=1e-5)
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    # Template without generation markers, end-of-turn id in generation_config, the hub's card metadata.
    assert "{% generation %}" not in tok.chat_template and "<|im_start|>" in tok.chat_template
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] in (
        tok.convert_tokens_to_ids("<|im_end|>"),
        [tok.convert_tokens_to_ids("<|im_end|>")],
    )
    front = _front_matter(out / "README.md")
    assert front["language"] == ["ny"] and "ltk" in front["tags"]
    assert front["license"] == "other"  # MIT data, but the base (a local folder) has no known licence
    manifest = json.loads((out / "ltk_export.json").read_text())
    assert manifest["source"]["stage"] == "sft" and manifest["source"]["saved_as"] == "adapter"
    assert manifest["files"]["model.safetensors"]["sha256"] and manifest["model"]["dtype"] == "float32"


def test_export_hf_dtype_and_card_parse_with_huggingface_hub(tiny_family_model, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard
    from safetensors import safe_open

    out = tmp_path / "l3"
    res = CliRunner().invoke(
        main, ["export", str(tiny_family_model("llama3_1")), "--out", str(out), "--dtype", "bfloat16"]
    )
    assert res.exit_code == 0, res.output
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = f.keys()
        assert {f.get_tensor(k).dtype for k in names} == {torch.bfloat16}
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text-generation"
    eot = json.loads((out / "generation_config.json").read_text())["eos_token_id"]
    assert eot in (128009, [128009])  # <|eot_id|>, Llama 3.1's end of turn


# ----------------------------------------------------------------------------------------------- gguf
@pytest.mark.slow  # transformers reads a 128k-token vocabulary back from GGUF slowly (minutes on 2 cores)
@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_export_gguf_round_trips_a_real_llama3_tokenizer(
    tiny_family_model, tmp_path: Path, quant: str
) -> None:
    from gguf import GGUFReader

    src = tiny_family_model("llama3_1")
    out = tmp_path / f"l3-{quant}"
    res = CliRunner().invoke(
        main, ["export", str(src), "--out", str(out), "--format", "gguf", "--quant", quant]
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "ltk_export.json").read_text())
    rt = manifest["round_trip"]
    assert rt["passed"] and rt["same_token_ids"] and rt["max_abs_logprob_diff"] <= rt["tolerance"]
    (gguf_name,) = [p.name for p in out.glob("*.gguf")]
    assert gguf_name.endswith(f"-{quant}.gguf") and not (out / ".hf-work").exists()
    # The chat template travels in the GGUF's metadata (read with llama.cpp's own gguf package).
    field = GGUFReader(out / gguf_name).get_field("tokenizer.chat_template")
    assert "<|start_header_id|>" in bytes(field.parts[field.data[0]]).decode("utf-8")


def _tiny_qwen3(tokenizer_dir: Path, out: Path) -> Path:
    """A tiny random Qwen3 whose head size (32) is neither hidden/heads (16) nor Qwen3Config's default
    (128), as in real Qwen3 checkpoints (Qwen3-0.6B: hidden 1024, 16 heads, head_dim 128)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _export_qwen3_gguf(src: Path, out: Path) -> dict:
    from gguf import GGUFReader

    res = CliRunner().invoke(main, ["export", str(src), "--out", str(out), "--format", "gguf"])
    assert res.exit_code == 0, res.output
    rt = json.loads((out / "ltk_export.json").read_text())["round_trip"]
    assert rt["passed"] and rt["metadata_agrees"] and rt["same_token_ids"], rt
    assert rt["max_abs_logprob_diff"] <= rt["tolerance"] == 0.05
    # transformers' GGUF loader has no attention.key_length for qwen3: it reads the class default (128);
    # the file says 32 (what llama.cpp uses), so the tensors were loaded against the exported config.
    assert rt["transformers_loader_config_differs"] == {"head_dim": {"loader": 128, "file": 32}}
    (gguf_file,) = out.glob("*.gguf")
    reader = GGUFReader(gguf_file)
    assert reader.get_field("qwen3.attention.key_length").contents() == 32
    assert reader.get_field("qwen3.attention.value_length").contents() == 32
    return rt


def test_export_gguf_qwen3_with_its_own_head_dim(tokenizer_dir: Path, tmp_path: Path) -> None:
    """Qwen3 architecture with SmolLM2's tokenizer (49k entries: cheap enough for every run)."""
    src = _tiny_qwen3(tokenizer_dir, tmp_path / "qwen3-smol")
    _export_qwen3_gguf(src, tmp_path / "out")


@pytest.mark.slow  # transformers reads the 151k-token Qwen3 vocabulary back from GGUF three times (minutes)
def test_export_gguf_round_trips_a_real_qwen3_tokenizer(tmp_path: Path) -> None:
    from conftest import real_tokenizer_dir

    src = _tiny_qwen3(real_tokenizer_dir("qwen3"), tmp_path / "qwen3")
    rt = _export_qwen3_gguf(src, tmp_path / "out")
    assert rt["tokens"] > 40  # the check text, in Qwen3's own ids (Khmer through byte-level BPE)


def test_metadata_check_catches_a_gguf_that_disagrees_with_the_config(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    """The metadata check fails on the head size, layer count, vocabulary and tied output when they differ."""
    from transformers import AutoConfig

    from ltk.ship.gguf import convert, metadata_mismatches, read_metadata

    gguf_file = convert(tiny_llama_dir, tmp_path / "tiny-f32.gguf", "f32")
    meta, names = read_metadata(gguf_file)
    config = AutoConfig.from_pretrained(tiny_llama_dir)
    assert metadata_mismatches(meta, names, config) == []
    config.head_dim, config.num_hidden_layers, config.vocab_size = 32, 3, config.vocab_size + 1
    config.tie_word_embeddings = False
    wrong = " | ".join(metadata_mismatches(meta, names, config))
    assert "attention.key_length=16 but config head_dim=32" in wrong
    assert "llama.block_count=2 but config num_hidden_layers=3" in wrong
    assert "config vocab_size=49153" in wrong and "output.weight absent" in wrong


# --------------------------------------------------------------------------------------------- ollama
def _go_render(go_template: str, messages: list[dict[str, str]], tmp_path: Path) -> str:
    go_template_lib = pytest.importorskip("go_template", reason="py-go-template (Go's text/template) missing")
    path = tmp_path / "template.tmpl"
    path.write_text(go_template)
    data = {"Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}
    return go_template_lib.render(path, data).decode("utf-8")


CONVERSATIONS = [
    [{"role": "user", "content": "Madzi ndi chiyani?"}],
    [{"role": "system", "content": "Answer in Swahili."}, {"role": "user", "content": "Water?"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ជំរាបសួរ"},
        {"role": "assistant", "content": "សួស្តី!"},
        {"role": "user", "content": 'Say "hi" {{ .Prompt }}'},
    ],
]


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "llama2"])  # llama2 ships no template
def test_modelfile_template_renders_like_the_chat_template_in_go(family: str, tmp_path: Path) -> None:
    """The TEMPLATE ltk writes, executed by Go's own text/template, against the Jinja template."""
    from transformers import AutoTokenizer

    from conftest import real_tokenizer_dir
    from ltk.ship.ollama import modelfile_template

    tok = AutoTokenizer.from_pretrained(real_tokenizer_dir(family))
    pieces, go = modelfile_template(tok, tok.chat_template)
    for conversation in CONVERSATIONS:
        want = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert pieces.bos + _go_render(go, conversation, tmp_path) == want


def test_export_ollama_writes_gguf_and_modelfile(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / "ollama"
    res = CliRunner().invoke(main, ["export", str(tiny_llama_dir), "--out", str(out), "--format", "ollama"])
    assert res.exit_code == 0, res.output
    text = (out / "Modelfile").read_text()
    (gguf_name,) = [p.name for p in out.glob("*.gguf")]
    assert text.startswith(f"FROM ./{gguf_name}\n") and 'PARAMETER stop "<|im_end|>"' in text
    go = text.split('TEMPLATE """', 1)[1].split('"""\n', 1)[0]
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    for conversation in CONVERSATIONS:  # SmolLM2 writes its <|im_start|> "BOS" itself: no BOS to add
        want = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert _go_render(go, conversation, tmp_path) == want
    assert "ollama create NAME -f Modelfile" in res.output


# ------------------------------------------------------------------------------------------ bad input
def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_refusals_exit_2_and_write_nothing(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from transformers import OPTConfig, OPTForCausalLM

    (tmp_path / "runs" / "x" / "cpt").mkdir(parents=True)
    out = tmp_path / "out"
    res = _invoke("export", str(tmp_path / "runs" / "x"), "--out", str(out))
    assert res.exit_code == 2 and "has no finished stage" in res.output and "--resume" in res.output
    res = _invoke("export", str(tmp_path / "runs" / "missing"), "--out", str(out))
    assert res.exit_code == 2 and "no such model or run folder" in res.output
    res = _invoke("export", str(tiny_llama_dir), "--out", str(out), "--format", "gguf", "--quant", "q2_k")
    assert res.exit_code == 2 and "q2_k" in res.output
    res = _invoke("export", str(tiny_llama_dir), "--out", str(out), "--format", "onnx")
    assert res.exit_code == 2 and "onnx" in res.output
    out.mkdir()
    res = _invoke("export", str(tiny_llama_dir), "--out", str(out))
    assert res.exit_code == 2 and "already exists; pass --force" in res.output
    out.rmdir()
    opt = tmp_path / "opt"
    OPTForCausalLM(
        OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2)
    ).save_pretrained(opt)
    res = _invoke("export", str(opt), "--out", str(out), "--format", "gguf")
    assert res.exit_code == 2 and "does not support the architecture 'OPTForCausalLM'" in res.output
    assert "--format hf" in res.output
    assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))


def test_gemma3_without_its_sentencepiece_model_is_refused_before_any_work(tmp_path: Path) -> None:
    """Gemma-3 with only tokenizer.json (what the real tokenizer ships as here): exit 2, nothing written."""
    import shutil

    from transformers import Gemma3TextConfig

    from conftest import real_tokenizer_dir

    src = tmp_path / "gemma3"
    Gemma3TextConfig(
        vocab_size=262145,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        architectures=["Gemma3ForCausalLM"],
    ).save_pretrained(src)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(real_tokenizer_dir("gemma3") / name, src / name)
    out = tmp_path / "out"
    for fmt in ("gguf", "ollama"):
        res = _invoke("export", str(src), "--out", str(out), "--format", fmt)
        assert res.exit_code == 2, res.output
        assert "Gemma3ForCausalLM (Gemma-3) has no SentencePiece tokenizer.model" in res.output
        assert "copy tokenizer.model" in res.output and "--format hf" in res.output
        assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))


@pytest.mark.slow  # the converter on a 262k-token vocabulary: about 35 s of CPU
def test_llama_cpp_converter_writes_gemma3_from_tokenizer_json_as_byte_level_bpe(
    tiny_family_model, tmp_path: Path
) -> None:
    """Why the refusal above exists, kept as a canary: if a later converter writes Gemma-3's vocabulary
    properly from tokenizer.json, this fails and the refusal can go."""
    from gguf import GGUFReader

    from ltk.ship.gguf import convert

    gguf_file = convert(tiny_family_model("gemma3"), tmp_path / "g3.gguf", "f16")
    reader = GGUFReader(gguf_file)
    assert reader.get_field("tokenizer.ggml.model").contents() == "gpt2"  # not "llama" (SentencePiece)
    assert reader.get_field("tokenizer.ggml.pre").contents() != "gemma"


def test_push_to_hub_fails_before_any_work_offline_or_without_a_token(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    res = _invoke("export", str(tiny_llama_dir), "--out", str(out), "--push-to-hub", "me/model")
    assert res.exit_code == 2 and "HF_HUB_OFFLINE=1" in res.output and "hf upload" in res.output
    assert not out.exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token either
    res = _invoke("export", str(tiny_llama_dir), "--out", str(out), "--push-to-hub", "me/model")
    assert res.exit_code == 2 and "hf auth login" in res.output and not out.exists()
    res = _invoke("export", str(tiny_llama_dir), "--out", str(out), "--push-to-hub", "not a repo")
    assert res.exit_code == 2 and "OWNER/NAME" in res.output


# ----------------------------------------------------------------------------------------------- chat
def test_chat_prompt_on_a_run_marks_code_switching(adapter_run: Path) -> None:
    res = CliRunner().invoke(main, ["chat", str(adapter_run), "-p", "Moni!", "--max-new-tokens", "12"])
    assert res.exit_code == 0, res.output
    # the footer: model, speed, and the detector's count for the run's language (from its recipe)
    assert f"[{adapter_run} (sft): " in res.output and "tokens/s;" in res.output
    assert "words not Chichewa:" in res.output


def test_chat_compare_shows_two_models_side_by_side(adapter_run: Path, tiny_llama_dir: Path) -> None:
    res = CliRunner().invoke(
        main,
        ["chat", str(adapter_run), "--compare", str(tiny_llama_dir), "-p", "Moni!", "--max-new-tokens", "8"],
    )
    assert res.exit_code == 0, res.output
    header = next(line for line in res.output.splitlines() if line.startswith(f"{adapter_run} (sft)"))
    assert f"| {tiny_llama_dir}" in header
    assert res.output.count("words not Chichewa:") == 2


def test_chat_session_takes_turns_from_piped_input(adapter_run: Path) -> None:
    res = CliRunner().invoke(
        main,
        ["chat", str(adapter_run), "--max-new-tokens", "6", "--system", "Yankhani m'Chichewa."],
        input="Moni!\n/reset\nMuli bwanji?\n/exit\nnot read\n",
    )
    assert res.exit_code == 0, res.output
    assert res.output.count("tokens/s") == 2 and "(conversation forgotten)" in res.output
    assert res.output.count(">>> ") == 4  # two turns, /reset, /exit; the line after /exit is never read


def test_chat_marks_non_target_words(adapter_run: Path) -> None:
    from ltk.ship.chat import ChatModel

    model = ChatModel.load(str(adapter_run))
    marked = model.marked("mwana wa munthu the house of god", lambda w: f"<{w}>")
    assert marked.startswith("mwana") and "<the>" in marked and "<house>" in marked
    words, total = model.non_target_words("mwana wa munthu the house of god")
    assert total == 7 and "the" in words and "mwana" not in words


def test_chat_session_in_a_pseudo_terminal(adapter_run: Path) -> None:
    """The interactive path as a person meets it: a terminal, two turns, then /exit."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ltk.cli import main; main()",
            "chat",
            str(adapter_run),
            "--max-new-tokens",
            "6",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, count: int, timeout: float = 240) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while seen.count(marker) < count and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert seen.count(marker) >= count, seen.decode(errors="replace")

    try:
        read_until(b">>> ", 1)
        os.write(master, b"Moni!\n")
        read_until(b">>> ", 2)
        os.write(master, b"Muli bwanji?\n")
        read_until(b">>> ", 3)
        os.write(master, b"/exit\n")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert text.count("tokens/s") == 2 and "words not Chichewa" in text


@pytest.mark.slow
def test_embedded_smollm2_chat_stops_at_its_end_of_turn_and_its_gguf_round_trips(tmp_path: Path) -> None:
    import re

    res = CliRunner().invoke(
        main, ["chat", "embedded:smollm2-135m", "-p", "What is 2+2?", "--max-new-tokens", "96"]
    )
    assert res.exit_code == 0, res.output
    tokens = int(re.search(r"\[embedded:smollm2-135m: (\d+) tokens", res.output).group(1))
    assert 0 < tokens < 96  # it stopped by itself, at <|im_end|>, not at the limit
    assert "<|im_end|>" not in res.output and "<|im_start|>" not in res.output
    out = tmp_path / "smol-f16"
    res = CliRunner().invoke(main, ["export", "embedded:smollm2-135m", "--out", str(out), "--format", "gguf"])
    assert res.exit_code == 0, res.output
    rt = json.loads((out / "ltk_export.json").read_text())["round_trip"]
    assert rt["passed"] and rt["same_token_ids"] and rt["max_abs_logprob_diff"] <= 0.05
    front = _front_matter(out / "README.md")
    assert front["license"] == "apache-2.0" and front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
