"""The NLLB translation engine on a tiny random NLLB-architecture model, built offline in a fixture.

Random weights decode to junk, so the tests assert on token ids: the forced target token, the source
prefix, batch independence, the cache (a second run makes no generate call) and crash-resume with a real
SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ltk.errors import LtkError, UsageError

NYA = ("--tgt", "nya_Latn")
CORPUS = [
    "Hello world, how are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Write a short poem about the sea and the wind.",
    "Moni, muli bwanji lero? Ndili bwino, zikomo kwambiri.",
    "Explain why the sky is blue in simple words for a child.",
]


def build_tiny_nllb(folder: Path) -> Path:
    """A BPE tokenizer (Metaspace) wrapped as NllbTokenizer and a 1+1-layer M2M100 with d_model 32.

    Weights are drawn with std 1.0 (not the usual 0.02) so that outputs depend on the input: with tiny
    weights every input decodes to the same ids and batch-independence tests could not fail.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False
    )
    bpe.train_from_iterator(CORPUS * 5, trainer)
    model_json = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_json["merges"]]
    tok = NllbTokenizer(vocab=model_json["vocab"], merges=merges, src_lang="eng_Latn")
    config = M2M100Config(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 1.0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("tiny-nllb"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and immune to a busy machine stalling a second OMP thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine(nllb_dir: Path):
    from ltk.translation import GenerationSettings, TransformersEngine

    # float32 pinned: these tests compare token ids exactly (batched vs single, killed vs uninterrupted).
    return TransformersEngine(
        str(nllb_dir), settings=GenerationSettings(max_new_tokens=16), device="cpu", dtype="float32"
    )


SEGMENTS = [
    "Hello world",
    "how are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Write a short poem about the sea.",
    "fox",
    "Explain why the sky is blue in simple words for a child.",
    "Hello world",
]


def test_source_prefix_and_forced_target_token(engine) -> None:

    tok = engine.tokenizer
    ids = engine.encode(["Hello world"], "eng_Latn")[0]
    assert ids[0] == tok.convert_tokens_to_ids("eng_Latn")
    assert ids[-1] == tok.eos_token_id
    assert tok.convert_tokens_to_ids("nya_Latn") != tok.unk_token_id
    assert engine.encode(["Moni"], "nya_Latn")[0][0] == tok.convert_tokens_to_ids("nya_Latn")


def test_target_token_forced_and_batched_equals_single(engine, tmp_path: Path) -> None:
    from ltk.translation import TranslationCache, translate_segments

    nya = engine.tokenizer.convert_tokens_to_ids("nya_Latn")
    swh = engine.tokenizer.convert_tokens_to_ids("swh_Latn")
    batched = translate_segments(
        engine, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(tmp_path / "a"), progress=False
    )
    single = translate_segments(
        engine, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(tmp_path / "b"), batch_tokens=1,
        progress=False,
    )  # fmt: skip
    assert batched.stats.batches == 1 and single.stats.batches == 6  # 6 distinct segments
    # No budget given: the float32 transformers engine on CPU uses the smaller CPU budget (fastest measured).
    from ltk.translation import CPU_BATCH_TOKENS, default_batch_tokens

    assert engine.device == "cpu" and default_batch_tokens(engine) == CPU_BATCH_TOKENS == 2048
    assert batched.ids == single.ids
    assert all(ids[0] == nya for ids in batched.ids.values())
    # the outputs differ by input (the test could fail), and respect each segment's own length limit
    assert len({tuple(v) for v in batched.ids.values()}) > 1
    for seg, ids in batched.ids.items():
        assert len(ids) <= engine.settings.limit(len(engine.encode([seg], "eng_Latn")[0]))
    other = translate_segments(
        engine,
        ["Hello world"],
        "eng_Latn",
        "swh_Latn",
        cache=TranslationCache(tmp_path / "a"),
        progress=False,
    )
    assert other.ids["Hello world"][0] == swh and other.stats.cached == 0  # the languages are in the key


def test_second_run_makes_no_generate_call(engine, tmp_path: Path) -> None:
    from ltk.translation import TranslationCache, translate_segments

    calls = {"n": 0}
    original = engine.model.generate

    def counting_generate(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    engine.model.generate = counting_generate
    try:
        first = translate_segments(
            engine, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(tmp_path / "c"), batch_tokens=40,
            progress=False,
        )  # fmt: skip
        assert calls["n"] == first.stats.generate_calls > 1
        assert first.stats.distinct == 6 and first.stats.translated == 6
        calls["n"] = 0
        second = translate_segments(
            engine, list(reversed(SEGMENTS)), "eng_Latn", "nya_Latn", cache=TranslationCache(tmp_path / "c"),
            progress=False,
        )  # fmt: skip
    finally:
        engine.model.generate = original
    assert calls["n"] == 0 and second.stats.generate_calls == 0 and second.stats.cached == 6
    assert second.ids == first.ids


def test_cache_key_changes_with_generation_settings(engine, tmp_path: Path) -> None:
    from dataclasses import replace

    from ltk.translation import TranslationCache, translate_segments

    cache_dir = tmp_path / "d"
    translate_segments(
        engine, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(cache_dir), progress=False
    )
    saved = engine.settings
    engine.settings = replace(saved, max_new_tokens=8)
    try:
        again = translate_segments(
            engine, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(cache_dir), progress=False
        )
    finally:
        engine.settings = saved
    assert again.stats.cached == 0 and again.stats.translated == 6
    assert all(len(v) <= 8 for v in again.ids.values())


def test_ctranslate2_backend_same_interface(nllb_dir: Path, engine, tmp_path: Path) -> None:
    from ltk.translation import (
        CTranslate2Engine,
        GenerationSettings,
        TranslationCache,
        translate_segments,
    )

    ct2 = CTranslate2Engine(str(nllb_dir), settings=GenerationSettings(max_new_tokens=16), cache_dir=tmp_path)
    assert ct2.compute_type == "int8" and ct2.model_key != engine.model_key  # never shares cache rows
    result = translate_segments(
        ct2, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(tmp_path / "cache"), progress=False
    )
    nya = ct2.tokenizer.convert_tokens_to_ids("nya_Latn")
    assert all(ids[0] == nya for ids in result.ids.values())
    assert ct2.generate_calls == 1
    single = {s: ct2.generate(ct2.encode([s], "eng_Latn"), "nya_Latn", [16])[0] for s in set(SEGMENTS)}
    assert {s: v[:2] for s, v in single.items()} == {s: v[:2] for s, v in result.ids.items()}


def test_ctranslate2_rows_stop_at_their_own_limit(nllb_dir: Path, tmp_path: Path) -> None:
    """A row leaves CTranslate2's batch at its own limit instead of decoding to the batch's largest one
    (the tiny model falls into a repetition loop, NLLB's known failure, so rows run to their limits)."""
    from ltk.translation import CTranslate2Engine, GenerationSettings

    settings = GenerationSettings(max_new_tokens=24, max_length_ratio=None)
    ct2 = CTranslate2Engine(str(nllb_dir), settings=settings, cache_dir=tmp_path)
    rows = ct2.encode(SEGMENTS[:4], "eng_Latn")
    full = ct2.generate(rows, "nya_Latn", [24] * 4)
    assert [len(ids) for ids in full] == [24] * 4 and ct2.decoded_tokens == 4 * 24
    limits = [3, 8, 24, 5]
    ct2.decoded_tokens = 0
    cut = ct2.generate(rows, "nya_Latn", limits)
    assert cut == [ids[:limit] for ids, limit in zip(full, limits, strict=True)]
    assert ct2.decoded_tokens == sum(limits)  # 40 tokens of work, not 4 x 24 = 96


def test_dtype_auto_picks_bf16_where_the_cpu_has_it(nllb_dir: Path, engine, tmp_path: Path) -> None:
    import torch

    from ltk.translation import (
        DEFAULT_BATCH_TOKENS,
        GenerationSettings,
        TransformersEngine,
        TranslationCache,
        cpu_has_native_bf16,
        default_batch_tokens,
        load_engine,
        resolve_dtype,
        translate_segments,
    )

    assert resolve_dtype("auto", "cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert resolve_dtype("float16", "cpu") == "float16"
    bf = TransformersEngine(
        str(nllb_dir), settings=GenerationSettings(max_new_tokens=16), device="cpu", dtype="bfloat16"
    )
    assert {p.dtype for p in bf.model.parameters()} == {torch.bfloat16}
    assert bf.model_key == f"{engine.model_key}+bfloat16"  # never shares cache rows with float32
    assert default_batch_tokens(bf) == DEFAULT_BATCH_TOKENS
    result = translate_segments(
        bf, SEGMENTS, "eng_Latn", "nya_Latn", cache=TranslationCache(tmp_path / "bf"), progress=False
    )
    nya = bf.tokenizer.convert_tokens_to_ids("nya_Latn")
    assert all(ids[0] == nya and 1 < len(ids) <= 16 for ids in result.ids.values())
    with pytest.raises(UsageError, match="unknown dtype 'int4'"):
        load_engine(str(nllb_dir), dtype="int4")
    with pytest.raises(UsageError, match="applies to the transformers backend"):
        load_engine(str(nllb_dir), "ctranslate2", dtype="bfloat16")


def test_unsupported_language_lists_supported_codes(engine, nllb_dir: Path) -> None:
    from ltk.translation import check_languages, load_engine

    with pytest.raises(UsageError, match="does not support xyz_Latn"):  # before any weights load
        load_engine(str(nllb_dir), "ctranslate2", languages=("eng_Latn", "xyz_Latn"))

    with pytest.raises(UsageError) as err:
        check_languages(engine, "eng_Latn", "xyz_Latn")
    assert "does not support xyz_Latn" in str(err.value)
    assert "nya_Latn" in str(err.value) and "swh_Latn" in str(err.value)


def test_model_that_cannot_load_is_a_clear_error(tmp_path: Path, tiny_llama_dir: Path, monkeypatch) -> None:
    from ltk.translation import load_engine

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LtkError) as err:
        load_engine("facebook/no-such-nllb-model")
    assert "cannot load translation model 'facebook/no-such-nllb-model'" in str(err.value)
    assert "offline" in str(err.value)
    with pytest.raises(UsageError) as err:
        load_engine(str(tiny_llama_dir))
    assert "is a llama model, not a seq2seq translation model" in str(err.value)


def _write_input(path: Path, n: int) -> None:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "river",
        "mountain",
        "sea",
        "wind",
        "poem",
        "child",
        "sky",
        "blue",
    ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            instruction = " ".join(words[(i + k) % len(words)] for k in range(3 + i % 7)) + f" {i}."
            fh.write(
                json.dumps({"id": f"r{i}", "instruction": instruction, "output": f"Answer {i} here."}) + "\n"
            )
        fh.write("not json\n")
        fh.write(json.dumps({"instruction": "", "output": ""}) + "\n")


def _translate_cmd(
    model_dir: Path, src: Path, dst: Path, cache: Path, args: Sequence[str] = NYA
) -> list[str]:
    # float32: a resumed run or a rank batches segments differently, and bf16 may round those apart.
    return [
        str(Path(sys.executable).parent / "ltk"), "translate", str(src), str(dst), "--model", str(model_dir),
        *args, "--batch-tokens", "40", "--max-new-tokens", "24", "--cache-dir", str(cache),
        "--dtype", "float32", "--quiet",
    ]  # fmt: skip


def _reference_run(
    model_dir: Path, src: Path, tmp_path: Path, args: Sequence[str] = NYA
) -> tuple[Path, Path, dict, str]:
    """One plain-process translation of ``src``: (output, cache folder, env, stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    reference, cache = tmp_path / "reference.jsonl", tmp_path / "cache-ref"
    done = subprocess.run(
        _translate_cmd(model_dir, src, reference, cache, args), env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return reference, cache, env, done.stderr


def check_kill_and_resume(model_dir: Path, src: Path, tmp_path: Path, args: Sequence[str] = NYA) -> str:
    """SIGKILL `ltk translate` once its cache has rows, rerun it: the output equals an uninterrupted run's,
    nothing is lost or translated twice. Returns the reference run's stderr."""
    reference, reference_cache, env, stderr = _reference_run(model_dir, src, tmp_path, args)
    out = tmp_path / "resumed.jsonl"
    cache = tmp_path / "cache"
    proc = subprocess.Popen(_translate_cmd(model_dir, src, out, cache, args), env=env, stderr=subprocess.PIPE)
    db = cache / "translations" / "translations-rank0.sqlite"
    rows_at_kill = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                try:
                    rows_at_kill = conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
                except sqlite3.OperationalError:
                    rows_at_kill = 0
            if rows_at_kill > 0:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists()  # nothing partial

    with sqlite3.connect(db) as conn:
        rows_after_kill = conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
    assert rows_after_kill >= rows_at_kill > 0
    resumed = subprocess.run(
        _translate_cmd(model_dir, src, out, cache, args), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference.read_bytes()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT COUNT(*), COUNT(DISTINCT source) FROM translations").fetchone()
    with sqlite3.connect(reference_cache / "translations" / "translations-rank0.sqlite") as conn:
        distinct_total = conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
    assert rows[0] == rows[1] == distinct_total  # nothing lost, nothing duplicated
    assert rows_after_kill < distinct_total  # it really was killed mid-way
    assert f"{rows_after_kill:,} cached" in resumed.stderr
    return stderr


@pytest.mark.slow
def test_sigkill_mid_run_resumes_to_identical_output(nllb_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    _write_input(src, 120)
    stderr = check_kill_and_resume(nllb_dir, src, tmp_path)
    assert "skipped    empty 1, malformed 1" in stderr


@pytest.mark.slow
def test_two_ranks_under_torchrun_split_the_work_and_match_one_process(
    nllb_dir: Path, tmp_path: Path
) -> None:
    """``torchrun --nproc_per_node 2 ltk translate``: each rank translates its share into its own cache
    file, rank 0 writes the output, byte-identical to a one-process run; nothing translated twice."""
    src = tmp_path / "in.jsonl"
    _write_input(src, 60)
    reference, reference_cache, env, _ = _reference_run(nllb_dir, src, tmp_path)
    out = tmp_path / "two-ranks.jsonl"
    cache = tmp_path / "cache-two"
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--no-python",
    ]
    both = subprocess.run(
        [*launch, *_translate_cmd(nllb_dir, src, out, cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert both.returncode == 0, both.stderr[-3000:]
    assert out.read_bytes() == reference.read_bytes()
    sources = []
    for rank in (0, 1):
        with sqlite3.connect(cache / "translations" / f"translations-rank{rank}.sqlite") as conn:
            sources.append({row[0] for row in conn.execute("SELECT source FROM translations")})
    with sqlite3.connect(reference_cache / "translations" / "translations-rank0.sqlite") as conn:
        distinct_total = conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
    assert sources[0] and sources[1] and not sources[0] & sources[1]  # both worked, no segment twice
    assert len(sources[0]) + len(sources[1]) == distinct_total


def test_auto_backend_follows_the_cpu(nllb_dir: Path) -> None:
    """The default backend: CTranslate2 on a CPU without native bf16 (the float32 transformers engine
    misses the speed targets there), transformers when a dtype is pinned, on CPUs with bf16, and for
    OPUS-MT / LLM endpoints."""
    from ltk.translation import cpu_has_native_bf16, resolve_backend

    expected = "transformers" if cpu_has_native_bf16() else "ctranslate2"
    assert resolve_backend("auto", "nllb", "cpu") == expected
    assert resolve_backend("auto", "madlad", "cpu") == expected
    assert resolve_backend("auto", "m2m100", "cpu") == expected
    assert resolve_backend("auto", "nllb", "cpu", "float32") == "transformers"  # a pinned dtype: transformers
    assert resolve_backend("auto", "marian", "cpu") == "transformers"
    assert resolve_backend("transformers", "nllb", "cpu") == "transformers"
