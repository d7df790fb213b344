"""SFT in the base model's own chat format, on the real tokenizers (and templates) of Llama-3.1, Qwen3,
Gemma-3 and Llama-2 with tiny random models of their architectures: the rendered text is the tokenizer's
own, labels cover exactly the assistant turns and their end-of-turn token, a trained model stops there,
and the saved folder carries the template and the end-of-turn id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _train_data import make_recipe, write_build
from click.testing import CliRunner

from conftest import real_tokenizer_dir
from ltk.cli import main
from ltk.train.chat import (
    add_format_tokens,
    chat_format,
    render,
    shipped_template,
    tokenize_conversation,
)
from ltk.train.run import train_recipe

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

# Two turns in scripts other than Latin (Amharic, Khmer, Devanagari) and a system turn.
CONVERSATION = [
    {"role": "system", "content": "Answer in Amharic."},
    {"role": "user", "content": "ሰላም ነው?"},
    {"role": "assistant", "content": "አዎ፣ ሰላም ነው። እግዚአብሔር ይመስገን።"},
    {"role": "user", "content": "សួស្តី नमस्ते"},
    {"role": "assistant", "content": "ጤና ይስጥልኝ"},
]
ANSWER = "Hello there"
# family -> (recipe chat_template, the end-of-turn token the model must learn)
CASES = {
    "llama3_1": (None, "<|eot_id|>"),
    "qwen3": (None, "<|im_end|>"),
    "gemma3": (None, "<end_of_turn>"),
    "llama2": ("llama2", "</s>"),  # Llama-2 base has no template: the recipe names one
}


def _tokenizer(family: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(real_tokenizer_dir(family))


@pytest.mark.parametrize("family", list(CASES))
def test_rendered_text_and_ids_are_the_tokenizers_own(family: str) -> None:
    tok = _tokenizer(family)
    name, eot = CASES[family]
    fmt = chat_format(tok, name, None, None)
    assert fmt.eot_tokens == (eot,)
    assert add_format_tokens(tok, fmt) == []  # every marker is already a token of this vocabulary
    messages = CONVERSATION[1:] if family == "gemma3" else CONVERSATION
    if name is None:  # the base's own template, byte for byte
        assert render(tok, fmt.template, messages) == tok.apply_chat_template(messages, tokenize=False)
    out = tokenize_conversation(tok, fmt, messages)
    own = tok.apply_chat_template(messages, chat_template=fmt.template, tokenize=True, return_dict=True)
    assert out["input_ids"] == list(own["input_ids"])
    # Labels cover exactly the assistant contents and the end-of-turn token after each.
    trained = [t for t in out["labels"] if t != -100]
    text = tok.decode(trained)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert text.replace(" ", "") == "".join(a + eot for a in answers).replace(" ", "")
    assert trained.count(tok.convert_tokens_to_ids(eot)) == len(answers)
    # Nothing of the user or system turns is trained.
    assert "ሰላም ነው?" not in text and "नमस्ते" not in text


def test_a_base_without_template_gets_chatml_with_its_tokens_added() -> None:
    tok = _tokenizer("llama2")
    assert not tok.chat_template
    fmt = chat_format(tok, None, None, None)
    assert fmt.name == "chatml" and fmt.eot_tokens == ("<|im_end|>",)
    before = len(tok)
    new_ids = add_format_tokens(tok, fmt)
    assert len(new_ids) == 2 and len(tok) == before + 2
    out = tokenize_conversation(tok, fmt, CONVERSATION)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert [t for t in out["labels"] if t == im_end] == [im_end, im_end]  # one single token per turn


@pytest.mark.parametrize("name", ["chatml", "llama3", "qwen3", "gemma3"])
def test_shipped_templates_are_the_real_ones(name: str) -> None:
    family = {"llama3": "llama3_1"}.get(name, name)
    if name == "chatml":
        tok = _tokenizer("qwen3")
        # ChatML as Qwen3 renders a conversation without tools, up to a user turn (Qwen3 writes an empty
        # <think></think> block into the assistant turns after the last user turn)
        messages = CONVERSATION[:4]
        assert render(tok, shipped_template("chatml"), messages) == render(tok, tok.chat_template, messages)
        return
    tok = _tokenizer(family)
    assert shipped_template(name) == tok.chat_template


def _sft_recipe(root: Path, model_dir: Path, **overrides) -> Path:
    """A recipe that trains SFT alone, from the base, long enough to learn one short answer (a few
    whole-word tokens: a 2-layer, 64-wide model memorises it in tens of steps)."""
    build = write_build(root, examples=4)
    conversation = [
        {"role": "user", "content": "ሰላም"},
        {"role": "assistant", "content": ANSWER},
    ]
    tier = build / "instructions" / "tier-1000" / "train.jsonl"
    tier.write_text("".join(json.dumps({"messages": conversation}) + "\n" for _ in range(8)))
    return make_recipe(
        root,
        model_dir,
        **{
            "adapter": None,
            "ltk.stages.cpt.enabled": False,
            "ltk.stages.sft.start_from": "base",
            "ltk.stages.sft.max_steps": 40,
            "ltk.stages.sft.learning_rate": 1e-2,
            "ltk.stages.sft.lr_scheduler": "constant",
            "max_grad_norm": 100.0,
            "ltk.stages.sft.micro_batch_size": 4,
            "save_steps": 1000,
            **overrides,
        },
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "template", "eot"), [("llama3_1", None, "<|eot_id|>"), ("llama2", None, "<|im_end|>")]
)
def test_trained_model_stops_at_its_end_of_turn_and_reloads_with_it(
    tmp_path: Path, tiny_family_model, family: str, template: str | None, eot: str
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    recipe = _sft_recipe(
        tmp_path, tiny_family_model(family), **({"chat_template": template} if template else {})
    )
    final = Path(train_recipe(recipe, stage="sft")["sft"])
    record = json.loads((final / "ltk_stage.json").read_text())
    assert record["eot_tokens"] == [eot]
    tok = AutoTokenizer.from_pretrained(final)
    eot_id = tok.convert_tokens_to_ids(eot)
    assert tok.chat_template == record_template(family, template, tok)
    gen = GenerationConfig.from_pretrained(final)
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    assert eot_id in eos
    model = AutoModelForCausalLM.from_pretrained(final)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "ሰላም"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=20, do_sample=False)
    new = out[0, prompt["input_ids"].shape[1] :].tolist()
    assert new[-1] == eot_id, tok.decode(new)  # stopped at the end of turn, not at max_new_tokens
    assert tok.decode(new[:-1]).strip() == ANSWER
    if family == "llama2":  # the added ChatML markers were trained, and saved as special tokens
        assert record["format_tokens_added"] == 2 and eot in tok.all_special_tokens


def record_template(family: str, template: str | None, tok) -> str:
    """The template the saved tokenizer must carry: the base's own, or ChatML for a base without one."""
    own = _tokenizer(family).chat_template
    return own if own else shipped_template(template or "chatml")


def test_unknown_template_name_is_refused_with_did_you_mean(tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    recipe = make_recipe(tmp_path, tiny_llama_dir)
    recipe.write_text(recipe.read_text() + "chat_template: lama3\n")
    result = CliRunner().invoke(main, ["train", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "chat_template" in result.output and "did you mean 'llama3'" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_template_that_rejects_the_roles_fails_before_training(tmp_path: Path, tiny_family_model) -> None:
    build = write_build(tmp_path)
    tier = build / "instructions" / "tier-1000" / "train.jsonl"
    rows = tier.read_text().splitlines()
    # Gemma-3's template requires user/assistant to alternate: two user turns in example 3
    bad = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    }
    rows[2] = json.dumps(bad)
    tier.write_text("\n".join(rows) + "\n")
    recipe = make_recipe(tmp_path, tiny_family_model("gemma3"))
    result = CliRunner().invoke(main, ["train", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "example 3 (roles user/user/assistant)" in result.output
    assert "must alternate" in result.output and "fix:" in result.output
    assert not (tmp_path / "runs").exists()


def test_an_empty_answer_is_named_as_a_data_error(tmp_path: Path, tiny_llama_dir: Path) -> None:
    build = write_build(tmp_path)
    tier = build / "instructions" / "tier-1000" / "train.jsonl"
    rows = tier.read_text().splitlines()
    rows[1] = json.dumps(
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": " "}]}
    )
    tier.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(main, ["train", str(make_recipe(tmp_path, tiny_llama_dir))])
    assert result.exit_code == 2, result.output
    assert "example 2 has an empty assistant turn (message 1)" in result.output
    assert "fix: drop the example or fill in the answer" in result.output
    assert not (tmp_path / "runs").exists()
