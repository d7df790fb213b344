"""Translation speed: naive vs the peer way vs ltk's transformers engine vs ltk's CTranslate2 engine.

    python benchmarks/translation.py --segments 96 --naive-segments 8   # 3 rounds, ~25 min on 2 idle cores
    python benchmarks/translation.py --segments 24 --families-only      # only the per-family rows
    python benchmarks/translation.py --quick    # tiny smoke run (seconds), for checking the script

The model is an M2M100ForConditionalGeneration with the exact nllb-200-distilled-600M configuration
(written out below) and random weights; token ids are fed directly. The EOS row of its (tied) embedding
is zero, so the EOS logit is exactly 0 while the largest of 256k random logits is positive: no segment
ever ends early, and each decodes to its output length (source length + 10 tokens, the engine's
per-segment limit with max_length_ratio 1.0) with no logits processor involved (a processor suppressing
EOS would add full-vocabulary work per row and step that real translation does not do). One at a time,
that is exactly the segment's length. In a transformers batch every row runs as long as the batch's
longest (as with real generate, which computes finished rows until the batch ends). CTranslate2 takes a
finished row out of its batch (as it does when a real translation emits EOS), and ltk stops each row at
its own limit, so there a row decodes exactly its length. Useful work is therefore identical across
variants, and the script checks it (every variant must return exactly the expected tokens); tokens/s
counts useful output tokens only.

Variants (same segments, same model, one process):
  naive        one segment per generate call, float32 weights as loaded (on an evenly spaced subset;
               per-segment rate extrapolated)
  peer         fixed batches of 16 in file order, float32 (the closest peer tool's way)
  ltk          ltk.translation.translate_segments with TransformersEngine as ltk runs it by default
               (sorted, token budget, dtype "auto": bfloat16 on a CPU with native bf16 such as AMX)
  ltk-fp32     the same with float32 weights: separates the batching gain from the dtype gain
  ltk-ct2      the same loop with CTranslate2Engine (int8 on CPU)
  ct2-batchmax ltk-ct2 without the per-row stop (every row decodes to its batch's largest limit, as
               ltk's CTranslate2 engine did before 2026-11-27); run once, after the rounds
  dedup        ltk-ct2 on a workload with realistic repeats, with and without translating each
               distinct segment once
  families     one row per engine family at its smallest released size, on each backend ltk runs it
               on (random weights, exact configs, the same segments and limits): m2m100-hf / -ct2
               (facebook/m2m100_418M), marian-hf (opus-mt transformer-align), madlad-hf / -ct2
               (google/madlad400-3b-mt's exact layer shapes and vocabulary, but --madlad-layers of its
               32+32 layers: the whole 3B model is 12 GB in float32 and its conversion holds it twice,
               more than a shared 23 GB / 2-core machine has); an LLM endpoint gets no row (its speed is
               the serving stack's, vLLM or llama.cpp, not ltk's)

On a CPU without native bf16, "ltk" (dtype auto) is float32, so ltk-fp32 is the same run and is not
repeated: its row is ltk's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from ltk.translation import (
    CTranslate2Engine,
    GenerationSettings,
    TransformersEngine,
    TranslationCache,
    cpu_has_native_bf16,
    default_batch_tokens,
    token_budget_batches,
    translate_segments,
)
from ltk.translation.engines import CT2_FAMILIES

RESULTS = Path(__file__).parent / "results"
MODEL_MARK = "ltk-benchmark-model-v2"  # models built before the zero EOS row are rebuilt
SRC, TGT = "eng_Latn", "swh_Latn"

# facebook/nllb-200-distilled-600M config.json, written out by hand (no hub access here).
NLLB_600M = {
    "vocab_size": 256206,
    "d_model": 1024,
    "encoder_layers": 12,
    "decoder_layers": 12,
    "encoder_attention_heads": 16,
    "decoder_attention_heads": 16,
    "encoder_ffn_dim": 4096,
    "decoder_ffn_dim": 4096,
    "max_position_embeddings": 1024,
    "activation_function": "relu",
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0,
    "decoder_layerdrop": 0,
    "init_std": 0.02,
    "scale_embedding": True,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "decoder_start_token_id": 2,
    "tie_word_embeddings": True,
    "use_cache": True,
    "max_length": 200,
}
QUICK = {
    family: {"d_model": 64, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
             "decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "vocab_size": 500}
    for family in ("m2m100", "marian")
}  # fmt: skip
QUICK["madlad"] = {"d_model": 64, "d_ff": 128, "d_kv": 16, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2,
                   "vocab_size": 500}  # fmt: skip
TINY = {
    **NLLB_600M,
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
}


# facebook/m2m100_418M: the NLLB-600M shape with M2M-100's 128,112-token vocabulary.
M2M100_418M = {**NLLB_600M, "vocab_size": 128112, "max_position_embeddings": 1024}
# Helsinki-NLP/opus-mt-* (transformer-align, as opus-mt-en-de): 6+6 layers, d_model 512, 8 heads, FFN 2048,
# swish, sinusoidal positions, shared embeddings; vocab 58101 (each pair has its own, around this size).
OPUS_MT = {
    "vocab_size": 58101,
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 8,
    "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "max_position_embeddings": 512,
    "activation_function": "swish",
    "scale_embedding": True,
    "static_position_embeddings": True,
    "share_encoder_decoder_embeddings": True,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "forced_eos_token_id": None,
}
# google/madlad400-3b-mt (T5): 32+32 layers, d_model 1024, d_ff 8192, 16 heads x 128, vocab 256000,
# untied head. 3B parameters: 12 GB in float32 (the CTranslate2 conversion loads it as well), more than a
# shared 23 GB machine holds: --madlad-layers keeps every shape but runs fewer layers (time per token is
# about embeddings/head + layers x per-layer cost; the row says how many were run).
MADLAD_3B = {
    "vocab_size": 256000,
    "d_model": 1024,
    "d_ff": 8192,
    "d_kv": 128,
    "num_layers": 32,
    "num_decoder_layers": 32,
    "num_heads": 16,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
FAMILY_CONFIGS = {"m2m100": M2M100_418M, "marian": OPUS_MT, "madlad": MADLAD_3B}
FAMILY_MODELS = {
    "m2m100": "facebook/m2m100_418M config",
    "marian": "Helsinki-NLP/opus-mt (transformer-align) config",
    "madlad": "google/madlad400-3b-mt config",
}


def _small_spm(path: Path, user_symbols: list[str]) -> Path:
    """A 300-piece sentencepiece model: the families' tokenizer classes need one (ids are fed directly)."""
    import io

    import sentencepiece as spm

    text = ["the quick brown fox jumps over the lazy dog", "habari ya leo asante sana"] * 50
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=buffer, vocab_size=60, model_type="bpe",
        user_defined_symbols=user_symbols, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


def build_family_model(folder: Path, family: str, config: dict) -> None:
    """Random weights in a family's exact config, its real tokenizer class with the model's full vocabulary
    (CTranslate2's converter maps every id to a token), and zero EOS/pad rows in the output projection (so
    no segment ends early: every row decodes exactly to its limit)."""
    from transformers import (
        M2M100Config,
        M2M100ForConditionalGeneration,
        M2M100Tokenizer,
        MarianConfig,
        MarianMTModel,
        MarianTokenizer,
        T5Config,
        T5ForConditionalGeneration,
        T5Tokenizer,
    )

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if family == "m2m100":
        # M2M-100's layout: vocab.json in fairseq order, then 100 language tokens and 8 made-up words
        # (128004 + 100 + 8 = 128112); pad 1, eos 2 as in NLLB's config.
        model = M2M100ForConditionalGeneration(M2M100Config(**config))
        model_file = _small_spm(folder / "sentencepiece.bpe.model", [])
        plain = config["vocab_size"] - 100 - 8
        vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{f"▁p{i}": i for i in range(4, plain)}}
        (folder / "vocab.json").write_text(json.dumps(vocab))
        tok = M2M100Tokenizer(vocab_file=str(folder / "vocab.json"), spm_file=str(model_file), src_lang="en")
        assert max(tok.lang_token_to_id.values()) + 1 + tok.num_madeup_words == config["vocab_size"]
    elif family == "marian":
        import sentencepiece as spm

        model = MarianMTModel(MarianConfig(**config))
        model_file = _small_spm(folder / "source.spm", [])
        (folder / "target.spm").write_bytes(model_file.read_bytes())
        sp = spm.SentencePieceProcessor(model_file=str(model_file))
        (folder / "vocab.json").write_text(
            json.dumps({sp.id_to_piece(i): i for i in range(sp.get_piece_size())})
        )
        tok = MarianTokenizer(str(model_file), str(folder / "target.spm"), str(folder / "vocab.json"))
    else:
        # MADLAD's 256000 pieces (pad, eos, unk first), its <2xx> tokens among them (here at the end).
        model = T5ForConditionalGeneration(T5Config(**config))
        pieces = [(p, 0.0) for p in ("<pad>", "</s>", "<unk>")]
        pieces += [(f"▁p{i}", -float(i)) for i in range(3, config["vocab_size"] - 2)]
        pieces += [("<2en>", 0.0), ("<2sw>", 0.0)]
        tok = T5Tokenizer(vocab=pieces, extra_ids=0)
        assert len(tok) == config["vocab_size"]
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[config.get("eos_token_id", 1)] = 0.0
        head[config.get("pad_token_id", 0)] = 0.0
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / MODEL_MARK).write_text("eos and pad rows zero\n")


def build_model(folder: Path, config: dict) -> None:
    """Random weights in the given config plus an NLLB tokenizer with a matching vocabulary size."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(M2M100Config(**config)).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight[config["eos_token_id"]] = 0.0  # EOS logit 0: never the argmax
    model.save_pretrained(folder)
    (folder / MODEL_MARK).write_text("eos row zero\n")
    # 256,000 plain pieces; the 202 language codes and <mask> are appended as special tokens after them.
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({f"▁p{i}": i for i in range(4, 256000)})
    NllbTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)


class IdsMixin:
    """Feeds token ids directly: a segment is the string of its ids ("17 2345 999"), each taken modulo
    the model's vocabulary, behind the family's own source prefix."""

    def encode(self, texts, src, tgt=None):
        if self.family == "nllb":
            prefix = [self.tokenizer.convert_tokens_to_ids(src)]
        else:
            prefix = self.source_prefix(src, tgt)
        plain = self.plain_vocab  # ids 4..plain-1: ordinary pieces (specials and language codes stay out)
        return [
            [*prefix, *(4 + (int(x) - 4) % (plain - 4) for x in t.split()), self.tokenizer.eos_token_id]
            for t in texts
        ]

    plain_vocab = 256000

    def decode(self, ids):
        return " ".join(map(str, ids))


class IdsTransformersEngine(IdsMixin, TransformersEngine):
    pass


class IdsCT2Engine(IdsMixin, CTranslate2Engine):
    pass


class BatchMaxCT2Engine(IdsCT2Engine):
    """The counterfactual for the per-row stop: every row decodes to the batch's largest limit."""

    def generate(self, batch, tgt, limits):
        tok = self.tokenizer
        results = self.translator.translate_batch(
            [tok.convert_ids_to_tokens(list(ids)) for ids in batch],
            target_prefix=[[tgt]] * len(batch),
            beam_size=1,
            max_decoding_length=max(limits),
            max_input_length=0,
        )
        self.decoded_tokens += len(batch) * max(limits)
        return [
            tok.convert_tokens_to_ids(r.hypotheses[0])[:limit]
            for r, limit in zip(results, limits, strict=True)
        ]


def workload(n: int, seed: int, repeat_share: float = 0.0) -> list[str]:
    """Segments with a realistic length spread: log-normal, median ~22 tokens, 4..160 (FLORES-like
    sentences plus long instruction sentences). With ``repeat_share`` > 0, that share of segments
    repeats earlier ones, skewed towards a few frequent ones (instruction sets reuse boilerplate)."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < repeat_share:
            out.append(out[min(len(out) - 1, int(rng.paretovariate(1.2)) - 1)])
            continue
        length = max(4, min(160, int(rng.lognormvariate(3.1, 0.6))))
        out.append(" ".join(str(rng.randrange(4, 256000)) for _ in range(length)))
    return out


def run_generate(engine: TransformersEngine, batches: list[list[str]]) -> tuple[float, int]:
    """Call the engine's generate on fixed batches (naive and peer ways); returns (seconds, useful tokens)."""
    start = time.perf_counter()
    useful = 0
    for batch in batches:
        ids = engine.encode(batch, SRC)
        limits = [engine.settings.limit(len(r)) for r in ids]
        out = engine.generate(ids, TGT, limits)
        useful += sum(len(o) for o in out)
    return time.perf_counter() - start, useful


def run_ltk(engine, segments: list[str], batch_tokens: int, cache_dir: Path) -> tuple[float, int, dict]:
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache = TranslationCache(cache_dir)
    start = time.perf_counter()
    result = translate_segments(
        engine, segments, SRC, TGT, cache=cache, batch_tokens=batch_tokens, progress=False
    )
    seconds = time.perf_counter() - start
    cache.close()
    useful = sum(len(result.ids[s]) for s in segments)  # every occurrence counts as translated output
    return seconds, useful, result.stats.as_dict()


def run_no_dedup(engine, segments: list[str], batch_tokens: int) -> tuple[float, int]:
    """ltk's batching over every occurrence (no dedup, no cache): the counterfactual for the dedup gain."""
    ids = engine.encode(segments, SRC)
    start = time.perf_counter()
    useful = 0
    for batch in token_budget_batches([len(r) for r in ids], batch_tokens):
        rows = [ids[i] for i in batch]
        out = engine.generate(rows, TGT, [engine.settings.limit(len(r)) for r in rows])
        useful += sum(len(o) for o in out)
    return time.perf_counter() - start, useful


def cpu_description() -> dict:
    """The CPU's model name and the flags that decide the fast paths (bf16 / int8 matmul units)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine()}
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    watched = (
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512_vnni",
        "avx_vnni",
        "avx512_bf16",
        "amx_bf16",
        "amx_tile",
    )
    return {
        "model": fields.get("model name", "?"),
        "cores": os.cpu_count(),
        "flags_present": [f for f in watched if f in flags],
        "flags_absent": [f for f in watched if f not in flags],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and workload (smoke test)")
    parser.add_argument("--segments", type=int, default=192)
    parser.add_argument("--naive-segments", type=int, default=24)
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=None,
        help="token budget (default: each engine's own, as ltk uses)",
    )
    parser.add_argument("--model-dir", help="reuse (or keep) the random model in this folder")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four main variants (median)")
    parser.add_argument("--length-ratio", type=float, default=1.0, help="output tokens = ratio x source + 10")
    parser.add_argument(
        "--families",
        nargs="*",
        default=["m2m100", "marian", "madlad"],
        choices=sorted(FAMILY_CONFIGS),
        help="engine families measured beside NLLB, each at its smallest released size",
    )
    parser.add_argument(
        "--madlad-layers",
        type=int,
        default=4,
        help="encoder and decoder layers of the MADLAD-400 3B shape actually run (it has 32 + 32; all "
        "32 need 12 GB in float32 and twice that to convert)",
    )
    parser.add_argument(
        "--families-only",
        action="store_true",
        help="only the per-family rows (NLLB's ltk rows first, then --families), no rounds: for a loaded "
        "machine where the rounds and the family rows do not fit one run",
    )
    parser.add_argument(
        "--nllb-rows",
        nargs="*",
        default=["hf", "ct2"],
        choices=["hf", "ct2"],
        help="with --families-only: NLLB's rows to run beside the other families",
    )
    parser.add_argument("--out", default="translation", help="results file name under benchmarks/results/")
    args = parser.parse_args()
    n, n_naive = (48, 8) if args.quick else (args.segments, args.naive_segments)
    load_at_start = os.getloadavg()[0]
    torch.set_num_threads(os.cpu_count() or 1)
    settings = GenerationSettings(max_new_tokens=256, max_length_ratio=args.length_ratio, min_new_tokens=0)
    work = Path(tempfile.mkdtemp(prefix="ltk-bench-"))
    try:
        t0 = time.perf_counter()
        model_dir = Path(args.model_dir) if args.model_dir else work / "model"
        if not (model_dir / MODEL_MARK).exists():
            build_model(model_dir, TINY if args.quick else NLLB_600M)
        build_s = time.perf_counter() - t0
        hf = IdsTransformersEngine(str(model_dir), settings=settings, device="cpu")  # ltk's default dtype
        # Without native bf16, dtype auto is float32: ltk-fp32 would be the same run, so it is not repeated.
        fp32_is_ltk = hf.dtype == "float32"
        hf32 = (
            hf
            if fp32_is_ltk
            else IdsTransformersEngine(str(model_dir), settings=settings, device="cpu", dtype="float32")
        )
        t0 = time.perf_counter()
        ct2 = IdsCT2Engine(str(model_dir), settings=settings, device="cpu", cache_dir=work / "ct2")
        convert_s = time.perf_counter() - t0
        segments = workload(n, seed=1)
        step = max(1, n // n_naive)
        naive_subset = segments[::step][:n_naive]
        hf.generate(hf.encode(segments[:2], SRC), TGT, [4, 4])  # warm-up (allocator, kernels)
        hf32.generate(hf32.encode(segments[:2], SRC), TGT, [4, 4])
        ct2.generate(ct2.encode(segments[:2], SRC), TGT, [4, 4])

        rows: dict[str, dict] = {}

        def expected(segs: list[str], engine=None) -> int:
            """Output tokens when every segment decodes to its limit."""
            return sum(settings.limit(len(r)) for r in (engine or hf).encode(segs, SRC, TGT))

        def record(
            name: str, segs: list[str], seconds: float, useful: int, engine=None, **extra: object
        ) -> dict:
            count = len(segs)
            if useful != expected(segs, engine):
                raise SystemExit(
                    f"{name}: {useful} output tokens, expected {expected(segs, engine)}: work differs"
                )
            rows[name] = {
                "segments": count,
                "seconds": round(seconds, 2),
                "segments_per_s": round(count / seconds, 3),
                "tokens_per_s": round(useful / seconds, 1),
                "useful_output_tokens": useful,
                **extra,
            }
            print(
                f"{name:<12} {count:>4} seg  {seconds:8.1f}s  {count / seconds:7.2f} seg/s  "
                f"{useful / seconds:8.1f} tok/s",
                flush=True,
            )
            return rows[name]

        # The machine's speed drifts over minutes, so the four main variants run in rounds, one after
        # another within a round; ratios are taken within each round and the median round is reported.
        rounds = []
        for r in range(0 if args.families_only else args.rounds):
            print(f"round {r + 1}/{args.rounds}", flush=True)
            got = {}
            load_start = os.getloadavg()[0]
            s, u = run_generate(hf32, [[seg] for seg in naive_subset])
            got["naive"] = record("naive", naive_subset, s, u, note=f"every {step}th segment, extrapolated")
            s, u = run_generate(hf32, [segments[i : i + 16] for i in range(0, n, 16)])
            got["peer"] = record("peer", segments, s, u, note="fixed batches of 16 in file order")
            s, u, st = run_ltk(hf, segments, args.batch_tokens, work / f"cache-hf-{r}")
            got["ltk"] = record("ltk", segments, s, u, batches=st["batches"], dtype=hf.dtype)
            if fp32_is_ltk:
                got["ltk-fp32"] = {**got["ltk"], "note": "the ltk run: dtype auto is float32 on this CPU"}
            else:
                s, u, st = run_ltk(hf32, segments, args.batch_tokens, work / f"cache-hf32-{r}")
                got["ltk-fp32"] = record("ltk-fp32", segments, s, u, batches=st["batches"], dtype="float32")
            before = ct2.decoded_tokens
            s, u, st = run_ltk(ct2, segments, args.batch_tokens, work / f"cache-ct2-{r}")
            decoded = ct2.decoded_tokens - before
            got["ltk-ct2"] = record("ltk-ct2", segments, s, u, batches=st["batches"], decoded_tokens=decoded)
            rate = {k: v["segments_per_s"] for k, v in got.items()}
            got["ratios"] = {
                "ltk_vs_naive": round(rate["ltk"] / rate["naive"], 2),
                "ltk_vs_peer": round(rate["ltk"] / rate["peer"], 2),
                "ct2_vs_naive": round(rate["ltk-ct2"] / rate["naive"], 2),
                "ct2_vs_ltk": round(rate["ltk-ct2"] / rate["ltk"], 2),
                "ltk_fp32_vs_naive": round(rate["ltk-fp32"] / rate["naive"], 2),
                "ltk_fp32_vs_peer": round(rate["ltk-fp32"] / rate["peer"], 2),
                "dtype_gain": round(rate["ltk"] / rate["ltk-fp32"], 2),
            }
            got["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
            print(json.dumps(got["ratios"]), got["load_average"], flush=True)
            rounds.append(got)

        def median(values: list[float]) -> float:
            return sorted(values)[len(values) // 2]

        families = {}
        repeats = workload(n, seed=2, repeat_share=0.35)
        if args.families_only:  # NLLB's rows as ltk runs it, beside the other families
            for name, engine in [(f"nllb-{b}", {"hf": hf, "ct2": ct2}[b]) for b in args.nllb_rows]:
                s, u, st = run_ltk(engine, segments, args.batch_tokens, work / f"cache-{name}")
                families[name] = record(
                    name, segments, s, u, engine=engine, batches=st["batches"], precision=engine.precision,
                    model="facebook/nllb-200-distilled-600M config", load_average=os.getloadavg()[0],
                )  # fmt: skip
        ratios = {}
        if rounds:  # medians, then the per-row stop and dedup counterfactuals
            for name in ("naive", "peer", "ltk", "ltk-fp32", "ltk-ct2"):
                rows[name] = sorted((g[name] for g in rounds), key=lambda x: x["seconds"])[len(rounds) // 2]
            ratios = {k: median([g["ratios"][k] for g in rounds]) for k in rounds[0]["ratios"]}
            ct2_max = BatchMaxCT2Engine(
                str(model_dir), settings=settings, device="cpu", cache_dir=work / "ct2"
            )
            s, u, st = run_ltk(ct2_max, segments, args.batch_tokens, work / "cache-ct2-max")
            record(
                "ct2-batchmax", segments, s, u, batches=st["batches"], decoded_tokens=ct2_max.decoded_tokens,
                note="rows decode to the batch's largest limit (no per-row stop)",
            )  # fmt: skip
            ratios["per_row_stop_gain"] = round(s / rows["ltk-ct2"]["seconds"], 2)
            del ct2_max
            s_all, u_all = run_no_dedup(ct2, repeats, args.batch_tokens or default_batch_tokens(ct2))
            record("ct2-all", repeats, s_all, u_all, note="repeats workload, every occurrence translated")
            s_d, u_d, st = run_ltk(ct2, repeats, args.batch_tokens, work / "cache-dedup")
            record(
                "ct2-dedup",
                repeats,
                s_d,
                u_d,
                distinct=st["distinct"],
                note="repeats workload, distinct once",
            )
            ratios["dedup_gain"] = round(s_all / s_d, 2)
        # One row per engine family at its smallest released size, on each backend ltk runs it on.
        for family in args.families:
            config = FAMILY_CONFIGS[family] if not args.quick else {**FAMILY_CONFIGS[family], **QUICK[family]}
            model_name = FAMILY_MODELS[family]
            if family == "madlad" and args.madlad_layers < config["num_layers"]:
                config = {
                    **config,
                    "num_layers": args.madlad_layers,
                    "num_decoder_layers": args.madlad_layers,
                }
                model_name += f", {args.madlad_layers}+{args.madlad_layers} of its 32+32 layers"
            suffix = f"-{config.get('num_layers')}l" if family == "madlad" else ""
            fam_dir = (Path(args.model_dir).parent if args.model_dir else work) / f"bench-{family}{suffix}"
            t0 = time.perf_counter()
            if not (fam_dir / MODEL_MARK).exists():
                build_family_model(fam_dir, family, config)
            build_family_s = time.perf_counter() - t0
            for backend in ("transformers", "ctranslate2") if family in CT2_FAMILIES else ("transformers",):
                cls = IdsTransformersEngine if backend == "transformers" else IdsCT2Engine
                extra = {"cache_dir": work / f"ct2-{family}"} if backend == "ctranslate2" else {}
                t0 = time.perf_counter()
                engine = cls(str(fam_dir), family=family, settings=settings, device="cpu", **extra)
                load_s = time.perf_counter() - t0
                engine.plain_vocab = config["vocab_size"] - 300 if not args.quick else 200
                engine.generate(engine.encode(segments[:2], SRC, TGT), TGT, [4, 4])  # warm-up
                s, u, st = run_ltk(engine, segments, args.batch_tokens, work / f"cache-{family}-{backend}")
                name = f"{family}-{'ct2' if backend == 'ctranslate2' else 'hf'}"
                families[name] = record(
                    name, segments, s, u, engine=engine, batches=st["batches"], precision=engine.precision,
                    model=model_name, build_seconds=round(build_family_s, 1),
                    load_or_convert_seconds=round(load_s, 1), load_average=os.getloadavg()[0],
                )  # fmt: skip
                del engine
        lengths = sorted(len(x.split()) for x in segments)
        result = {
            "benchmark": "translation",
            "date": date.today().isoformat(),
            "machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU",
            "torch": torch.__version__,
            "model": "M2M100ForConditionalGeneration, nllb-200-distilled-600M config, random weights"
            if not args.quick
            else "tiny M2M100 (quick mode)",
            "workload": {
                "segments": n,
                "source_tokens_min_median_max": [lengths[0], lengths[len(lengths) // 2], lengths[-1]],
                "repeat_share_in_dedup_workload": 0.35,
                "distinct_in_dedup_workload": len(set(repeats)),
                "output_tokens_per_segment": f"{args.length_ratio} x source length + 10 (forced)",
            },
            "cpu": cpu_description(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg()[0],
            "ltk_dtype": hf.dtype,
            "cpu_native_bf16": cpu_has_native_bf16(),
            "batch_tokens": {
                "ltk": args.batch_tokens or default_batch_tokens(hf),
                "ltk-fp32": args.batch_tokens or default_batch_tokens(hf32),
                "ltk-ct2": args.batch_tokens or default_batch_tokens(ct2),
            },
            "setup_seconds": {"build_model": round(build_s, 1), "ct2_convert": round(convert_s, 1)},
            "variants": rows,
            "families": families,
            "ratios": ratios,
            "ratios_are": f"median over {len(rounds)} round(s) of ratios taken within each round"
            if rounds
            else "no rounds (--families-only)",
            "command_options": vars(args),
            "rounds": rounds,
            "targets": {"ltk_vs_naive": ">= 6", "ltk_vs_peer": ">= 2", "ct2_vs_naive": ">= 15"},
        }
        print(json.dumps(ratios, indent=2))
        if not args.quick:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
