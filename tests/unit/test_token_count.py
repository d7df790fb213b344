"""TokenCounter gives exactly the counts of ``Tokenizer.encode`` (its fast path and its fallback)."""

from __future__ import annotations

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from ltk.corpus.token_count import TokenCounter, tokenizer_folder

TEXTS = [
    "Pachiyambi Mulungu analenga kumwamba ndi dziko lapansi.",
    "In the beginning God created the heaven and the earth. It's 3.14, isn't it? I'LL see; we'd've.",
    "Watu wote wamezaliwa huru, hadhi na haki zao ni sawa.",
    "numbers 12345 6,789.01 and   runs of spaces\t\ttabs\r\nwindows lines\n\n\nblank lines  ",
    "odd spaces\u00a0nbsp\u2003em\u3000ideographic\x85next-line\x1cfile-sep end",
    "emoji 🙂👍🏽, CJK 你好世界, Arabic مرحبا بالعالم, Devanagari नमस्ते, combining e\u0301 n\u0303",
    "a special token inside: <|endoftext|> and <|im_start|>user",
    "x" * 3000 + " " + "ab" * 500,
    "",
    " ",
    "ŵ ŵina Ŵ kuŵala; ndi 'mawu' a \"Yehova\" — (chaputala 1:1)",
]


def encode_counts(file, texts):
    tok = Tokenizer.from_file(str(file))
    return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]


def test_fast_path_matches_encode_on_smollm2(tmp_path):
    folder, _ = tokenizer_folder(None, tmp_path)
    counter = TokenCounter(folder)
    assert counter.fast  # SmolLM2: byte-level BPE with the GPT-2 regex
    expected = encode_counts(folder / "tokenizer.json", TEXTS)
    assert counter.counts(TEXTS) == expected
    assert counter.counts(TEXTS) == expected  # second time: every piece from the cache


def _train(tmp_path, pre, normalizer=None):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    if normalizer is not None:
        tok.normalizer = normalizer
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TEXTS * 5, trainer=trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    return tmp_path


LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def test_fast_path_matches_encode_with_a_split_regex_like_llama3(tmp_path):
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    folder = _train(tmp_path, pre)
    counter = TokenCounter(folder)
    assert counter.fast
    assert counter.counts(TEXTS + ["</s> inside <s>"]) == encode_counts(
        folder / "tokenizer.json", TEXTS + ["</s> inside <s>"]
    )


@pytest.mark.parametrize("case", ["normalizer", "prefix_space"])
def test_other_tokenizers_fall_back_to_encode(tmp_path, case):
    if case == "normalizer":
        folder = _train(tmp_path, pre_tokenizers.ByteLevel(add_prefix_space=False), normalizers.NFKC())
    else:
        folder = _train(tmp_path, pre_tokenizers.ByteLevel(add_prefix_space=True))
    counter = TokenCounter(folder)
    assert not counter.fast
    assert counter.counts(TEXTS) == encode_counts(folder / "tokenizer.json", TEXTS)
