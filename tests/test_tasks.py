"""The tiny world shipped with the package: arithmetic task, rewards and the tiny model (offline, CPU)."""

from __future__ import annotations

import ast
import operator
import random
import re

import pytest
import torch

from trl_basis.tasks import (
    DEFAULT_DIFFICULTIES,
    DIFFICULTY_LEVELS,
    WORLDS,
    arithmetic_reward,
    evaluate_expression,
    extract_final_integer,
    get_world,
    make_arithmetic_dataset,
    make_arithmetic_problem,
    math_verify_reward,
    tiny_model_path,
)


# --------------------------------------------------------------------------------------------------------------------
# Shared fixtures
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path())


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_path())


def _python_eval(expression: str) -> int:
    """Independent evaluator: Python's own parser on the ``+``/``-`` expression."""
    ops = {ast.Add: operator.add, ast.Sub: operator.sub}

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise AssertionError(f"unexpected node {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


# --------------------------------------------------------------------------------------------------------------------
# Model and tokenizer
# --------------------------------------------------------------------------------------------------------------------
def test_model_and_tokenizer_load_offline(model, tokenizer):
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.eos_token_id in (im_end, [im_end])
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert model.config.vocab_size >= len(tokenizer)
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 5_000_000


def test_chat_template_renders_chatml(tokenizer):
    messages = [{"role": "user", "content": "12+345-6="}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\n12+345-6=<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tokenizer.apply_chat_template(messages, tokenize=False) == "<|im_start|>user\n12+345-6=<|im_end|>\n"
    conversation = [
        {"role": "system", "content": "Be brief."},
        *messages,
        {"role": "assistant", "content": "351"},
    ]
    assert tokenizer.apply_chat_template(conversation, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n12+345-6=<|im_end|>\n"
        "<|im_start|>assistant\n351<|im_end|>\n"
    )
    # The assistant mask (used by SFT with assistant-only loss) covers the answer and its end-of-turn token.
    out = tokenizer.apply_chat_template(conversation[1:], return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(masked) == "351<|im_end|>"


def test_tokenize_decode_round_trip(tokenizer):
    for text in ["12+345-6=", "-17", "What is 12+345-6?\nThe answer is -17.", "  spaces  and\n\nnewlines ~{}|"]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert len(ids) == len(text)  # character level
        assert tokenizer.decode(ids) == text
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "1+2="}], add_generation_prompt=True)
    ids = rendered["input_ids"] if isinstance(rendered, dict) or hasattr(rendered, "keys") else rendered
    assert tokenizer.decode(ids) == "<|im_start|>user\n1+2=<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "user\n1+2=\nassistant\n"
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 2


def test_model_sampled_accuracy_is_partial(model, tokenizer):
    """The shipped model is only partly right: sampled accuracy on held-out prompts strictly inside (0.1, 0.9)."""
    test = make_arithmetic_dataset(num_train=0, num_test=64, seed=0)["test"]
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in test["prompt"]]
    batch = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8)
    completions = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert all(len(c) <= 8 for c in completions)
    rewards = arithmetic_reward(test["prompt"], completions, test["answer"])
    accuracy = sum(rewards) / len(rewards)
    assert 0.1 < accuracy < 0.9, accuracy


def _load_training_script():
    from trl_basis.tasks import train_tiny_model

    return train_tiny_model


@pytest.mark.parametrize("world", list(WORLDS))
def test_held_out_prompts_never_in_sft_stream_or_rl_train_split(world):
    """Replay the world's model's SFT stream (every problem of every step it trained) from its training_info.json:
    no held-out problem of the world's task (the main job's, the benchmarks' and the notebooks' test splits) is in
    it, and none is in the RL train split either."""
    import json
    from pathlib import Path

    script = _load_training_script()
    root = Path(__file__).resolve().parents[1]
    info = json.loads((Path(tiny_model_path(world)) / "training_info.json").read_text())
    args = info["args"]
    levels = tuple(args["levels"])
    assert set(get_world(world).difficulties) <= set(levels)
    seen, held_out = (
        _replay_sft_stream(script, info),
        script.held_out_expressions(levels, args["eval_prompts"], info["seed"]),
    )
    assert len(seen) > 10_000  # the replay really covers the stream
    start = info.get("init_from")
    while start is not None:  # the model it started from trained on its own stream: replay that one too
        import hashlib

        weights = root / start["path"] / "model.safetensors"
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == start["sha256"], "the starting model changed"
        earlier = json.loads((root / start["path"] / "training_info.json").read_text())
        seen |= _replay_sft_stream(script, earlier)
        start = earlier.get("init_from")
    for seed in (0, 1, 2):
        data = make_arithmetic_dataset(num_train=4000, num_test=256, seed=seed, world=world)
        test = {p[-1]["content"].rstrip("=") for p in data["test"]["prompt"]}
        train = {p[-1]["content"].rstrip("=") for p in data["train"]["prompt"]}
        assert len(test) == 256
        assert not test & seen, f"seed {seed}: held-out problems in the SFT stream"
        assert not test & train, f"seed {seed}: held-out problems in the RL train split"
        assert test <= held_out
    # The check has teeth: without the exclusion, the same stream does hit held-out problems.
    unfiltered = script.ProblemStream(seed=info["seed"] + 2, exclude=set(), levels=levels)
    assert {next(unfiltered).expression for _ in range(len(seen))} & held_out


def _replay_sft_stream(script, info: dict) -> set[str]:
    """Every problem the SFT run described by `info` (a training_info.json) trained on."""
    args = info["args"]
    levels = tuple(args["levels"])
    held_out = script.held_out_expressions(levels, args["eval_prompts"], info["seed"])
    stream = script.ProblemStream(seed=info["seed"] + 2, exclude=held_out, levels=levels)
    return {next(stream).expression for _ in range(info["stopped_at_step"] * args["batch_size"])}


def test_worlds_select_their_model_and_levels():
    assert tiny_model_path() == tiny_model_path("level3")
    assert tiny_model_path("mixed") == tiny_model_path("hard") != tiny_model_path()
    for name, world in WORLDS.items():
        ds = make_arithmetic_dataset(num_train=30, num_test=30, world=name)
        assert set(ds["test"]["difficulty"]) == set(world.difficulties)
    with pytest.raises(ValueError, match="unknown world 'tiny'; the shipped worlds are 'level3', 'mixed', 'hard'"):
        tiny_model_path("tiny")
    with pytest.raises(ValueError, match=r"world 'mixed' has difficulties \(3, 4\)"):
        make_arithmetic_dataset(world="mixed", difficulties=(3,))


# --------------------------------------------------------------------------------------------------------------------
# Arithmetic task
# --------------------------------------------------------------------------------------------------------------------
def test_dataset_is_deterministic_per_seed():
    a = make_arithmetic_dataset(num_train=300, num_test=50, seed=3)
    b = make_arithmetic_dataset(num_train=300, num_test=50, seed=3)
    c = make_arithmetic_dataset(num_train=300, num_test=50, seed=4)
    for split in ("train", "test"):
        assert a[split].to_list() == b[split].to_list()
    assert a["train"].to_list() != c["train"].to_list()
    assert a["test"].to_list() != c["test"].to_list()


def test_default_dataset_is_the_tiny_model_level():
    ds = make_arithmetic_dataset(num_train=50, num_test=20)
    assert set(ds["train"]["difficulty"]) == set(ds["test"]["difficulty"]) == set(DEFAULT_DIFFICULTIES) == {3}


def test_dataset_format_answers_and_difficulties():
    ds = make_arithmetic_dataset(difficulties=tuple(DIFFICULTY_LEVELS))  # 2000 train, 200 test, seed 0, all levels
    assert set(ds) == {"train", "test"}
    assert ds["train"].num_rows == 2000 and ds["test"].num_rows == 200
    assert ds["train"].column_names == ["prompt", "answer", "difficulty"]
    levels = set(DIFFICULTY_LEVELS)
    for split in ("train", "test"):
        assert set(ds[split]["difficulty"]) == levels
        for row in ds[split]:
            (message,) = row["prompt"]
            assert message["role"] == "user"
            text = message["content"]
            assert re.fullmatch(r"\d+([+-]\d+){1,2}=", text), text
            expression = text[:-1]
            assert row["answer"] == str(_python_eval(expression))
            num_terms, max_digits = DIFFICULTY_LEVELS[row["difficulty"]]
            operands = re.findall(r"\d+", expression)
            assert len(operands) == num_terms
            assert max(len(x) for x in operands) == max_digits
    # Test problems are distinct and none of them is in the train split.
    test_prompts = [r[0]["content"] for r in ds["test"]["prompt"]]
    train_prompts = {r[0]["content"] for r in ds["train"]["prompt"]}
    assert len(set(test_prompts)) == len(test_prompts)
    assert not train_prompts & set(test_prompts)
    # Each level gets an equal share; some answers are negative.
    counts = [ds["test"]["difficulty"].count(level) for level in levels]
    assert max(counts) - min(counts) <= 1
    assert any(a.startswith("-") for a in ds["train"]["answer"])


def test_make_arithmetic_problem():
    rng = random.Random(0)
    for difficulty in DIFFICULTY_LEVELS:
        for _ in range(50):
            problem = make_arithmetic_problem(rng, difficulty)
            assert problem.difficulty == difficulty
            assert problem.answer == _python_eval(problem.expression) == evaluate_expression(problem.question)
            assert problem.to_example()["prompt"] == [{"role": "user", "content": problem.expression + "="}]
    with pytest.raises(ValueError):
        make_arithmetic_problem(rng, 0)
    with pytest.raises(ValueError):
        make_arithmetic_dataset(num_train=10, num_test=10, difficulties=[9])
    # Only one level asked for: only that level appears.
    ds = make_arithmetic_dataset(num_train=20, num_test=10, seed=0, difficulties=[2])
    assert set(ds["train"]["difficulty"]) == set(ds["test"]["difficulty"]) == {2}


# --------------------------------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------------------------------
def test_extract_final_integer():
    assert extract_final_integer("42") == 42
    assert extract_final_integer("3+4=7") == 7
    assert extract_final_integer("The answer is -17.") == -17
    assert extract_final_integer("no number") is None
    assert extract_final_integer("") is None


def test_arithmetic_reward_hand_made_cases():
    completions = [
        "-17",  # right
        "17",  # wrong sign
        "",  # empty
        "I do not know",  # no number
        "-17 is the answer",  # trailing text after the number
        "12+345-6=-17",  # final integer counts
        "-17 or maybe 5",  # final integer is 5: wrong
        "  -17\n",
    ]
    assert arithmetic_reward(None, completions, ["-17"] * len(completions)) == [
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        1.0,
        0.0,
        1.0,
    ]
    # Conversational completions: the last assistant message's content.
    conversational = [
        [{"role": "assistant", "content": "351"}],
        [{"role": "assistant", "content": "350"}],
        [{"role": "assistant", "content": "3"}, {"role": "assistant", "content": "so 351"}],
        [{"role": "assistant", "content": ""}],
    ]
    assert arithmetic_reward([[{"role": "user", "content": "x"}]] * 4, conversational, ["351"] * 4) == [
        1.0,
        0.0,
        1.0,
        0.0,
    ]
    assert arithmetic_reward(None, ["0", "-0", "00"], ["0", "0", "0"]) == [1.0, 1.0, 1.0]
    assert arithmetic_reward.__name__ == "arithmetic_reward"
    with pytest.raises(ValueError):
        arithmetic_reward(None, ["1", "2"], ["1"])


def test_math_verify_reward_hand_made_cases():
    pytest.importorskip("math_verify")
    completions = [
        "So the total is \\boxed{42}.",
        "48 / 2 = 24 clips.\n#### 24",
        "The answer is \\boxed{41}.",
        [{"role": "assistant", "content": "Half of it: $\\boxed{\\frac{1}{2}}$"}],
        "I cannot tell.",
        "#### 1,234",
    ]
    answers = [
        "Some reasoning.\n#### 42",
        "24",
        "\\boxed{42}",
        "0.5",
        "#### 7",
        "#### 1234",
    ]
    assert math_verify_reward(None, completions, answers) == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert math_verify_reward.__name__ == "math_verify_reward"
