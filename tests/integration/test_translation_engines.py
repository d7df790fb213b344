"""MT engine families behind the one interface, on tiny random models built here with the families' real
tokenizer classes (M2M100Tokenizer with its 100 language tokens, T5Tokenizer with MADLAD's ``<2xx>``
pieces, MarianTokenizer with sentencepiece models): the source prefix and target token are checked on token
ids, batched equals one at a time, cache hits make no model call, and a language a model does not cover is
an error that lists what it covers. Khmer (a script without spaces) is translated too, beyond Latin script.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ltk.errors import UsageError

CORPUS = [
    "Hello world, how are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Write a short poem about the sea and the wind.",
    "Moni, muli bwanji lero? Ndili bwino, zikomo kwambiri.",
    "Explain why the sky is blue in simple words for a child.",
    "Habari ya leo? Nzuri sana, asante kwa kuuliza.",
    "មនុស្សទាំងអស់ កើតមកមានសេរីភាព និងសមភាព ក្នុងសិទ្ធិ និងសេចក្ដីថ្លៃថ្នូរ។",
]
SEGMENTS = [
    "Hello world",
    "how are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Write a short poem about the sea.",
    "fox",
    "Explain why the sky is blue in simple words for a child.",
]
MADLAD_CODES = ["en", "sw", "ny", "km"]


def _spm(path: Path, user_symbols: list[str] = ()) -> Path:
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=buffer, vocab_size=160, model_type="bpe",
        user_defined_symbols=list(user_symbols), pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, minloglevel=2,
    )  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


def _spm_vocab(model: Path) -> dict[str, int]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    return {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}


def _random_weights(model, std: float = 1.0):
    """Weights with std 1.0 so outputs depend on the input (tiny weights decode every input alike)."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, std)
    return model.eval()


def build_tiny_m2m100(folder: Path) -> Path:
    """M2M-100's layout: vocab.json in fairseq order (<s> <pad> </s> <unk>, then the pieces), the 100
    language tokens after it, 8 made-up words after those (facebook/m2m100_418M: 128004 + 100 + 8)."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    spm_file = _spm(folder / "sentencepiece.bpe.model")
    pieces = [p for p in _spm_vocab(spm_file) if p not in ("<pad>", "</s>", "<unk>")]
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *pieces])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = M2M100Tokenizer(vocab_file=str(folder / "vocab.json"), spm_file=str(spm_file), src_lang="en")
    size = max(tok.lang_token_to_id.values()) + 1 + tok.num_madeup_words
    config = M2M100Config(
        vocab_size=size, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id,
    )  # fmt: skip
    _random_weights(M2M100ForConditionalGeneration(config)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_tiny_madlad(folder: Path) -> Path:
    import sentencepiece as spm
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    model = _spm(folder / "spm.model", [f"<2{c}>" for c in MADLAD_CODES])
    sp = spm.SentencePieceProcessor(model_file=str(model))
    tok = T5Tokenizer(
        vocab=[(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())], extra_ids=0
    )
    config = T5Config(
        vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
    )  # fmt: skip
    _random_weights(T5ForConditionalGeneration(config)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_tiny_marian(folder: Path, targets: list[str] = ()) -> Path:
    """One OPUS-MT direction; ``targets`` adds ``>>xxx<<`` tokens (a multi-target model)."""
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    spm_file = _spm(folder / "source.spm", [f">>{t}<<" for t in targets])
    (folder / "target.spm").write_bytes(spm_file.read_bytes())
    vocab = _spm_vocab(spm_file)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = MarianTokenizer(
        source_spm=str(spm_file), target_spm=str(folder / "target.spm"), vocab=str(folder / "vocab.json")
    )
    config = MarianConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        forced_eos_token_id=None,
    )  # fmt: skip
    _random_weights(MarianMTModel(config)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def m2m_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_m2m100(tmp_path_factory.mktemp("tiny-m2m100"))


@pytest.fixture(scope="module")
def madlad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_madlad(tmp_path_factory.mktemp("tiny-madlad"))


@pytest.fixture(scope="module")
def marian_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-opus")
    build_tiny_marian(root / "opus-mt-en-ny")
    build_tiny_marian(root / "opus-mt-ny-en")
    build_tiny_marian(root / "opus-mt-en-mul", targets=["swh", "khm"])
    return root


def _engine(model: Path | str, family: str, **kw):
    from ltk.translation import GenerationSettings, load_engine

    return load_engine(
        str(model), family=family, settings=GenerationSettings(max_new_tokens=16), dtype="float32", **kw
    )


def _counting(engine_model):
    calls = {"n": 0}
    original = engine_model.generate

    def counting_generate(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    engine_model.generate = counting_generate
    return calls, original


def _batched_single_cached(engine, src: str, tgt: str, tmp_path: Path, model=None) -> dict[str, list[int]]:
    """Batched == one at a time; a rerun on the same cache makes zero model calls. Returns the ids.

    ``model``: the torch model whose ``generate`` calls are counted; None (CTranslate2, whose Translator
    takes no attributes): the engine's own count of generate calls."""
    from ltk.translation import TranslationCache, translate_segments

    batched = translate_segments(
        engine, SEGMENTS, src, tgt, cache=TranslationCache(tmp_path / "a"), progress=False
    )
    single = translate_segments(
        engine, SEGMENTS, src, tgt, cache=TranslationCache(tmp_path / "b"), batch_tokens=1, progress=False
    )
    assert batched.stats.batches == 1 and single.stats.batches == len(SEGMENTS)
    assert batched.ids == single.ids
    assert len({tuple(v) for v in batched.ids.values()}) > 1  # outputs depend on the input: the test can fail
    calls, original = _counting(model) if model is not None else ({"n": 0}, None)
    before = engine.generate_calls
    try:
        again = translate_segments(
            engine, list(reversed(SEGMENTS)), src, tgt, cache=TranslationCache(tmp_path / "a"), progress=False
        )
    finally:
        if model is not None:
            model.generate = original
    assert calls["n"] == 0 and again.stats.generate_calls == 0 and again.stats.cached == len(SEGMENTS)
    assert engine.generate_calls == before
    assert again.ids == batched.ids
    return batched.ids


def test_m2m100_source_token_forced_target_and_cache(m2m_dir: Path, tmp_path: Path) -> None:
    engine = _engine(m2m_dir, "m2m100", languages=("eng_Latn", "swh_Latn"))
    tok = engine.tokenizer
    assert engine.family == "m2m100" and engine.licence == "MIT" and engine.model_key.startswith("m2m100:")
    assert len(engine.supported_languages()) == 100 and "sw" in engine.supported_languages()
    row = engine.encode(["Hello world"], "eng_Latn", "swh_Latn")[0]
    # the same ids M2M100Tokenizer itself builds: __en__ ... </s>
    tok.src_lang = "en"
    assert row == tok("Hello world")["input_ids"]
    assert row[0] == tok.convert_tokens_to_ids("__en__") and row[-1] == tok.eos_token_id
    ids = _batched_single_cached(engine, "eng_Latn", "swh_Latn", tmp_path, engine.model)
    sw = tok.convert_tokens_to_ids("__sw__")
    assert all(v[0] == sw for v in ids.values())
    # Khmer source (no spaces between words): __km__ prefixed, English forced
    khmer = "មនុស្សទាំងអស់ កើតមកមានសេរីភាព"
    assert engine.encode([khmer], "khm_Khmr")[0][0] == tok.convert_tokens_to_ids("__km__")
    out = engine.generate(engine.encode([khmer], "khm_Khmr"), "eng_Latn", [8])[0]
    assert out[0] == tok.convert_tokens_to_ids("__en__")


def test_m2m100_does_not_cover_chichewa(m2m_dir: Path) -> None:
    from ltk.translation import load_engine

    with pytest.raises(UsageError) as err:  # from the tokenizer, before any weights load
        load_engine(str(m2m_dir), family="m2m100", languages=("eng_Latn", "nya_Latn"))
    message = str(err.value)
    assert "M2M-100 model" in message and "does not support nya_Latn (tried ny, nya, nya_Latn)" in message
    assert "It supports 100 codes: af am ar" in message and " sw " in message
    with pytest.raises(UsageError, match="has no NLLB-200 language tokens"):
        load_engine(str(m2m_dir), family="nllb")  # the wrong family for this tokenizer


def test_madlad_target_prefix_no_forced_token(madlad_dir: Path, tmp_path: Path) -> None:
    engine = _engine(madlad_dir, "madlad", languages=("eng_Latn", "swh_Latn", "khm_Khmr"))
    tok = engine.tokenizer
    assert engine.supported_languages() == sorted(MADLAD_CODES) and engine.licence == "Apache-2.0"
    row = engine.encode(["Hello world"], "eng_Latn", "swh_Latn")[0]
    assert row[0] == tok.convert_tokens_to_ids("<2sw>") and row[-1] == tok.eos_token_id
    assert row[1:-1] == tok("Hello world", add_special_tokens=False)["input_ids"]
    assert engine.encode(["Hello"], "eng_Latn", "khm_Khmr")[0][0] == tok.convert_tokens_to_ids("<2km>")
    assert engine.forced_target("swh_Latn") is None  # the prefix names the target; nothing is forced
    ids = _batched_single_cached(engine, "eng_Latn", "swh_Latn", tmp_path, engine.model)
    # the decoder starts from pad (T5): no row begins with a language token
    lang_ids = {tok.convert_tokens_to_ids(f"<2{c}>") for c in MADLAD_CODES}
    assert not any(v and v[0] in lang_ids for v in ids.values())
    with pytest.raises(
        UsageError, match=r"does not support yor_Latn \(tried yo, yor, yor_Latn\).*en km ny sw"
    ):
        engine.code("yor_Latn")


def test_marian_one_model_per_direction(marian_root: Path, tmp_path: Path) -> None:
    from ltk.translation import TranslationCache, back_translate, translate_conversations

    template = str(marian_root / "opus-mt-{src}-{tgt}")
    engine = _engine(template, "marian", languages=("eng_Latn", "nya_Latn"))
    assert sorted(engine.engines) == [("eng_Latn", "nya_Latn"), ("nya_Latn", "eng_Latn")]
    forward = engine.pair("eng_Latn", "nya_Latn")
    assert forward.name.endswith("opus-mt-en-ny") and engine.licence == "CC-BY-4.0"
    tok = forward.tokenizer
    row = engine.encode(["Hello world"], "eng_Latn", "nya_Latn")[0]
    assert row == tok("Hello world")["input_ids"]  # what MarianTokenizer builds: pieces + </s>, no prefix
    ids = _batched_single_cached(engine, "eng_Latn", "nya_Latn", tmp_path, forward.model)
    assert ids
    # the round trip uses the reverse model
    cache = TranslationCache(tmp_path / "rt")
    convs, fwd = translate_conversations(
        engine, [[{"role": "user", "content": "Hello world. The sea."}]], "eng_Latn", "nya_Latn", cache=cache,
        progress=False,
    )  # fmt: skip
    back_translate(engine, convs, fwd, "eng_Latn", "nya_Latn", cache=cache, progress=False)
    assert engine.pair("nya_Latn", "eng_Latn").generate_calls >= 1


def test_marian_multi_target_prefix_and_missing_pair(marian_root: Path) -> None:
    from ltk.translation import load_engine

    multi = _engine(marian_root / "opus-mt-en-mul", "marian", languages=("eng_Latn",))
    row = multi.encode(["Hello world"], "eng_Latn", "swh_Latn")[0]
    tok = multi.pair("eng_Latn", "swh_Latn").tokenizer
    assert row[0] == tok.convert_tokens_to_ids(">>swh<<")
    assert multi.encode(["Hello"], "eng_Latn", "khm_Khmr")[0][0] == tok.convert_tokens_to_ids(">>khm<<")
    with pytest.raises(UsageError) as err:
        load_engine(
            str(marian_root / "opus-mt-{src}-{tgt}"), family="marian", languages=("eng_Latn", "swh_Latn")
        )
    message = str(err.value)
    assert "no OPUS-MT model for eng_Latn -> swh_Latn" in message
    assert "opus-mt-en-sw" in message and "fix:" in message


@pytest.mark.slow
@pytest.mark.parametrize("family", ["m2m100", "madlad", "marian"])
def test_sigkill_resume_identical(
    family: str, m2m_dir: Path, madlad_dir: Path, marian_root: Path, tmp_path: Path
) -> None:
    """A real SIGKILL in the middle of `ltk translate --engine FAMILY`, then the same command: identical
    output to an uninterrupted run, nothing translated twice."""
    import test_translate as nllb_tests  # the same folder: the kill-and-resume harness

    src = tmp_path / "in.jsonl"
    nllb_tests._write_input(src, 120)
    model, tgt = {
        "m2m100": (m2m_dir, "swh_Latn"),
        "madlad": (madlad_dir, "swh_Latn"),
        "marian": (marian_root / "opus-mt-{src}-{tgt}", "nya_Latn"),
    }[family]
    nllb_tests.check_kill_and_resume(model, src, tmp_path, ["--engine", family, "--tgt", tgt])


def _ct2(model: Path, family: str, tmp_path: Path, compute_type: str | None = None):
    from ltk.translation import CTranslate2Engine, GenerationSettings

    return CTranslate2Engine(
        str(model), family=family, settings=GenerationSettings(max_new_tokens=16), cache_dir=tmp_path / "ct2",
        compute_type=compute_type, threads=1,
    )  # fmt: skip


def _same_ids_as_transformers(model: Path, family: str, tmp_path: Path) -> dict[str, list[int]]:
    """CTranslate2 with float32 weights gives exactly the float32 transformers engine's ids."""
    from ltk.translation import TranslationCache, translate_segments

    ct2 = _ct2(model, family, tmp_path, "float32")
    assert ct2.model_key.endswith("+ct2-float32")
    reference = _engine(model, family)
    got = {}
    for name, engine in (("ct2", ct2), ("hf", reference)):
        got[name] = translate_segments(
            engine, SEGMENTS, "eng_Latn", "swh_Latn", cache=TranslationCache(tmp_path / name), progress=False
        ).ids
    assert got["ct2"] == got["hf"]
    assert len({tuple(v) for v in got["ct2"].values()}) > 1
    return got["ct2"]


def test_m2m100_on_ctranslate2(m2m_dir: Path, tmp_path: Path) -> None:
    """M2M-100 converted to CTranslate2: its 100 language tokens and 8 made-up words at the model's ids
    (transformers 5's tokenizer no longer hands them to the converter as special tokens), ``__sw__``
    forced first, float32 ids equal to the transformers engine's, int8 batched equals one at a time, and
    a rerun on the cache makes no model call."""
    from ltk.translation import load_engine

    ids = _same_ids_as_transformers(m2m_dir, "m2m100", tmp_path)
    ct2 = _ct2(m2m_dir, "m2m100", tmp_path)
    loaded = load_engine(str(m2m_dir), "ctranslate2", family="m2m100", languages=("eng_Latn", "swh_Latn"),
                         cache_dir=tmp_path / "ct2")  # fmt: skip
    assert loaded.backend == "ctranslate2" and loaded.model_key == ct2.model_key  # the same converted folder
    tok = ct2.tokenizer
    assert ct2.compute_type == "int8" and ct2.model_key.startswith("m2m100:")
    assert len(ct2.target_vocabulary) == json.loads((m2m_dir / "config.json").read_text())["vocab_size"]
    for code in ("en", "sw", "km", "zu"):
        assert ct2.target_vocabulary[tok.convert_tokens_to_ids(f"__{code}__")] == f"__{code}__"
    assert ct2.target_vocabulary[-8:] == [f"madeupword{i}" for i in range(8)]
    sw = tok.convert_tokens_to_ids("__sw__")
    assert all(v[0] == sw for v in ids.values())
    int8 = _batched_single_cached(ct2, "eng_Latn", "swh_Latn", tmp_path / "int8")
    assert all(v[0] == sw for v in int8.values())
    khmer = ct2.encode(["មនុស្សទាំងអស់ កើតមកមានសេរីភាព"], "khm_Khmr")
    assert khmer[0][0] == tok.convert_tokens_to_ids("__km__")
    assert ct2.generate(khmer, "eng_Latn", [8])[0][0] == tok.convert_tokens_to_ids("__en__")


def test_madlad_on_ctranslate2_same_ids_as_transformers(madlad_dir: Path, tmp_path: Path) -> None:
    """MADLAD-400 (T5) converted to CTranslate2: float32 ids equal to the transformers engine's; int8 (the
    CPU default) keeps the <2xx> prefix, forces nothing, batched equals one at a time, and cache hits make
    no model call."""
    _same_ids_as_transformers(madlad_dir, "madlad", tmp_path)
    ct2 = _ct2(madlad_dir, "madlad", tmp_path)
    assert ct2.model_key.startswith("madlad:") and ct2.model_key.endswith("+ct2-int8")
    rows = ct2.encode(SEGMENTS, "eng_Latn", "swh_Latn")
    assert all(r[0] == ct2.tokenizer.convert_tokens_to_ids("<2sw>") for r in rows)
    assert ct2.forced_target("swh_Latn") is None
    _batched_single_cached(ct2, "eng_Latn", "swh_Latn", tmp_path / "int8")
