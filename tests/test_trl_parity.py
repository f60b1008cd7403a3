"""Parity with `GRPOTrainer`: TRL's own GRPO test scenarios, run against GRPOTrainer, BASISTrainer and MaxPOTrainer.

Ported from TRL's `tests/test_grpo_trainer.py` (the scenarios that run offline on CPU), adapted to this project's
tiny model and generated arithmetic task: the hub models and the `zen` dataset are replaced by the shipped tiny
Qwen2 model and `make_arithmetic_dataset`, TRL's random reward model by a tiny sequence-classification model built
from the same config, and TRL's unbounded length rewards by rewards in [0, 1] (BASIS needs the weighted reward in
[0, 1]; that refusal has its own test here). Every test asserts what TRL asserts (training runs, the loss is logged,
every trainable parameter changed, the logged tool metrics, the error message) for all three trainers; where a
trainer refuses a scenario by design, the test asserts the exact error instead. Fake `generate` functions, as in
TRL's own tests, stand in for the tiny model only where a scenario needs specific completions (tool calls).
"""

from __future__ import annotations

import hashlib
import os
from unittest.mock import patch

import pytest
import torch
from datasets import Dataset, DatasetDict, IterableDatasetDict
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset, tiny_model_path
from trl_basis.trainers.registry import TRAINERS, config_class, trainer_class

pytestmark = pytest.mark.slow
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

ALL = list(TRAINERS)  # the trainer registry's names: every trainer the command line offers
MODEL = tiny_model_path()


# ---------------------------------------------------------------------------------------------------- helpers
def make_args(name: str, tmp_path, num_generations: int = 4, **overrides):
    """The trainer's config with TRL's test settings; `num_generations` is the group size of GRPO and MaxPO (BASIS
    samples one completion per prompt, and its offline stage samples 2 per prompt)."""
    config_cls = config_class(name)
    kwargs = dict(
        output_dir=str(tmp_path / name),
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to="none",
        learning_rate=1e-2,  # TRL uses 0.1: gradients of tiny models are tiny
        per_device_train_batch_size=4,
        max_completion_length=8,
        max_steps=2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    if name == "basis":
        kwargs.update(num_reference_samples=2, reference_batch_size=4, filter_constant_prompts=False)
        kwargs.update(reference_cache_dir=None)
    else:
        kwargs["num_generations"] = num_generations
    if name == "maxpo":
        kwargs["max_k"] = min(2, num_generations - 1)
    kwargs.update(overrides)
    return config_cls(**kwargs)


def build(name: str, tmp_path, args=None, reward_funcs="default", train_dataset="default", **kwargs):
    trainer_cls = trainer_class(name)
    if isinstance(train_dataset, str) and train_dataset == "default":
        train_dataset = dataset()
    return trainer_cls(
        model=kwargs.pop("model", MODEL),
        reward_funcs=hash_reward if isinstance(reward_funcs, str) and reward_funcs == "default" else reward_funcs,
        args=make_args(name, tmp_path) if args is None else args,
        train_dataset=train_dataset,
        **kwargs,
    )


def dataset(num: int = 16, conversational: bool = False, split: str = "train") -> Dataset:
    data = make_arithmetic_dataset(num_train=num, num_test=num, seed=0)[split]
    if not conversational:  # TRL's "standard_prompt_only": the prompt is a string
        data = data.map(lambda x: {"prompt": x["prompt"][0]["content"]})
    return data


def text(completion) -> str:
    return completion if isinstance(completion, str) else "".join(str(m.get("content", "")) for m in completion)


def hash_reward(completions, trainer_state=None, **kwargs) -> list[float]:
    """A noisy reward in [0, 1] (101 levels): a hash of the completion's text, its row and the step, so that it
    varies inside a group even when the tiny model writes the same answer (like TRL's random reward model)."""
    step = trainer_state.global_step if trainer_state is not None else -1
    keys = [f"{text(c)}/{i}/{step}" for i, c in enumerate(completions)]
    return [int(hashlib.sha256(k.encode()).hexdigest(), 16) % 101 / 100 for k in keys]


def length_reward(completions, **kwargs) -> list[float]:
    """TRL's "rewards longer completions", scaled into [0, 1]."""
    return [min(len(text(c)) / 400, 1.0) for c in completions]


def snapshot(trainer, trainable_only: bool = False) -> dict[str, torch.Tensor]:
    return {n: p.clone() for n, p in trainer.model.named_parameters() if p.requires_grad or not trainable_only}


def assert_trained(trainer, before: dict[str, torch.Tensor]) -> None:
    """What TRL asserts after `train()`: a logged loss, and every (trainable) parameter changed."""
    assert trainer.state.log_history[-1]["train_loss"] is not None
    for n, param in before.items():
        assert not torch.equal(param, trainer.model.get_parameter(n)), f"Parameter {n} has not changed."


def last_logged(trainer, key: str) -> float:
    """The last logged value of `key` (TRL's tests log once, at the end; these log every step)."""
    return [entry[key] for entry in trainer.state.log_history if key in entry][-1]


def train_and_check(trainer) -> None:
    before = snapshot(trainer)
    trainer.train()
    assert_trained(trainer, before)


@pytest.fixture(scope="module")
def reward_model_path(tmp_path_factory) -> str:
    """A tiny sequence-classification reward model (random head), as TRL's `tiny-Qwen2ForSequenceClassification`."""
    path = tmp_path_factory.mktemp("reward_model")
    config = AutoConfig.from_pretrained(MODEL, num_labels=1)
    config.pad_token_id = AutoTokenizer.from_pretrained(MODEL).pad_token_id
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(MODEL).save_pretrained(path)
    return str(path)


BASIS_RANGE_ERROR = r"BASIS needs the weighted reward in \[0, 1\]"
BASIS_AGGREGATION_ERROR = (
    r"BASIS samples one completion per prompt, so there is no group in which to normalise each reward function "
    r"\(normalize_then_sum\); use multi_objective_aggregation='sum_then_normalize'"
)


# ---------------------------------------------------------------------------------------------------- basics
@pytest.mark.parametrize("name", ALL)
def test_init_minimal(name, tmp_path):
    build(name, tmp_path)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("conversational", [False, True], ids=["standard_prompt_only", "conversational_prompt_only"])
def test_train_dataset_format(name, conversational, tmp_path):
    train_and_check(build(name, tmp_path, train_dataset=dataset(conversational=conversational)))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"])
def test_train_loss_types(name, loss_type, tmp_path):
    args = make_args(name, tmp_path, loss_type=loss_type)
    trainer = build(name, tmp_path, args=args)
    train_and_check(trainer)
    assert "completions/mean_length" in trainer.state.log_history[0]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo", "cispo"])
def test_warning_raised_sequence_level_with_token_summed_loss(name, loss_type, tmp_path, caplog):
    args = make_args(name, tmp_path, importance_sampling_level="sequence", loss_type=loss_type)
    with caplog.at_level("WARNING", logger="trl.trainer.grpo_trainer"):
        build(name, tmp_path, args=args)
    assert ("weights each sequence by its completion length" in caplog.text) == (loss_type != "grpo")


# Scenarios where TRL only changes the config and asserts that training runs and every parameter changes.
CONFIG_SCENARIOS = {
    "multiple_iterations": dict(num_iterations=2),
    "sync_ref_model": dict(beta=0.1, sync_ref_model=True, ref_model_sync_steps=1),
    "beta_non_zero": dict(beta=0.1),
    "pad_to_multiple_of": dict(pad_to_multiple_of=8),
    "off_policy_mask": dict(off_policy_mask_threshold=0.5, num_iterations=2),
    "bias_correction_kl": dict(beta=0.1, use_bias_correction_kl=True),
    "cast_lm_head_to_fp32": dict(cast_lm_head_to_fp32=True),
    "static_entropy": dict(entropy_coef=0.01),
    "adaptive_entropy": dict(use_adaptive_entropy=True, entropy_coef=0.01, entropy_target=0.5),
    "adaptive_entropy_grad_accum": dict(
        use_adaptive_entropy=True, entropy_coef=0.01, entropy_target=0.5, gradient_accumulation_steps=2
    ),
    "entropy_filter": dict(top_entropy_quantile=0.2),
    "delta_clipping": dict(delta=2.0),
    "sequence_importance_sampling": dict(importance_sampling_level="sequence"),
    "generation_kwargs": dict(generation_kwargs={"do_sample": True, "top_k": 10, "top_p": 0.9}),
    "generation_options": dict(temperature=0.7, top_p=0.95, top_k=20, min_p=0.01, repetition_penalty=1.1),
    "chat_template_kwargs": dict(chat_template_kwargs={"enable_thinking": False}),
    "steps_per_generation": dict(steps_per_generation=2),
    "generation_batch_size": dict(generation_batch_size=8),
    "multiple_dataloader_workers": dict(dataloader_num_workers=2),
    "log_completions": dict(log_completions=True, num_completions_to_print=2),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scenario", list(CONFIG_SCENARIOS))
def test_train_config_scenario(name, scenario, tmp_path):
    args = make_args(name, tmp_path, **CONFIG_SCENARIOS[scenario])
    train_and_check(build(name, tmp_path, args=args))


@pytest.mark.parametrize("name", ALL)
def test_train_with_transformers_continuous_batching(name, tmp_path):
    """TRL's paged generation path. It leaves the model in training mode after generating, which BASIS's offline
    stage (generation in evaluation mode, before the reference column exists) must not mistake for a training
    batch."""
    args = make_args(name, tmp_path, use_transformers_continuous_batching=True)
    trainer = build(name, tmp_path, args=args)
    train_and_check(trainer)
    if name == "basis":
        assert len(trainer.train_dataset["reference_rewards"][0]) == 2  # the offline stage ran, on the paged path


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scale_rewards", [False, "group", "batch", True, "none"])
def test_train_scale_rewards(name, scale_rewards, tmp_path):
    # TRL's option and values; BASIS and MaxPO apply it to their own advantages. One completion per prompt has no
    # group: BASIS refuses "group" (and True, TRL's spelling of it) with a one-line error naming the option.
    if name == "basis" and scale_rewards in ("group", True):
        with pytest.raises(ValueError, match="scale_rewards must be 'batch' or 'none'"):
            make_args(name, tmp_path, scale_rewards=scale_rewards)
        return
    args = make_args(name, tmp_path, scale_rewards=scale_rewards)
    train_and_check(build(name, tmp_path, args=args))


@pytest.mark.parametrize("name", ALL)
def test_train_num_generations_larger_than_batch_size(name, tmp_path):
    # TRL: groups of 4 over per-device batches of 2, so a group spans two gradient-accumulation steps.
    args = make_args(name, tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=2)
    train_and_check(build(name, tmp_path, args=args))


# ---------------------------------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("eval_setting", ["eval", "num_generations_eval", "eval_on_start"])
def test_train_with_eval(name, eval_setting, tmp_path):
    extra = dict(eval_strategy="steps", eval_steps=1, per_device_eval_batch_size=4)
    if eval_setting == "num_generations_eval" and name != "basis":  # BASIS evaluates one completion per prompt
        extra["num_generations_eval"] = 1
    if eval_setting == "eval_on_start":
        extra.update(eval_on_start=True, loss_type="grpo")
    trainer = build(name, tmp_path, args=make_args(name, tmp_path, **extra), eval_dataset=dataset(8, split="test"))
    train_and_check(trainer)
    assert any("eval_loss" in entry for entry in trainer.state.log_history)


def _eval_dataset(kind: str):
    streaming = "iterable" in kind
    split = dataset(8, split="test")
    split = split.to_iterable_dataset() if streaming else split
    if kind in ("dataset", "iterable_dataset"):
        return split
    if kind in ("dataset_dict", "iterable_dataset_dict"):
        return (IterableDatasetDict if streaming else DatasetDict)({"data1": split, "data2": split})
    return {"data1": split, "data2": split}


EVAL_KINDS = ["dataset", "iterable_dataset", "dataset_dict", "iterable_dataset_dict", "dict_of_dataset"]
EVAL_KINDS += ["dict_of_iterable_dataset"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", [*EVAL_KINDS, "none"])
def test_init_with_eval_dataset(name, kind, tmp_path):
    eval_dataset = None if kind == "none" else _eval_dataset(kind)
    trainer = build(name, tmp_path, eval_dataset=eval_dataset)
    if kind == "none":
        assert trainer.eval_dataset is None
    elif isinstance(trainer.eval_dataset, dict):
        assert set(trainer.eval_dataset.keys()) == {"data1", "data2"}
    else:
        assert trainer.eval_dataset is eval_dataset


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", EVAL_KINDS)
def test_evaluate_with_eval_dataset(name, kind, tmp_path):
    args = make_args(name, tmp_path, per_device_eval_batch_size=4)
    metrics = build(name, tmp_path, args=args).evaluate(eval_dataset=_eval_dataset(kind))
    if kind in ("dataset", "iterable_dataset"):
        assert metrics["eval_loss"] is not None
    else:
        assert metrics["eval_data1_loss"] is not None and metrics["eval_data2_loss"] is not None


# ---------------------------------------------------------------------------------------------------- iterable data
BASIS_ITERABLE_ERROR = (
    "The offline stage needs a map-style Dataset; got IterableDataset without a 'reference_rewards' column. "
    "Precompute the column with `trl_basis.estimate_reference_rewards` on a map-style dataset."
)


@pytest.mark.parametrize("name", ALL)
def test_train_with_iterable_dataset(name, tmp_path):
    data = dataset().to_iterable_dataset()
    if name == "basis":  # refused by design: the offline stage needs to index and cache the prompts
        with pytest.raises(ValueError, match=BASIS_ITERABLE_ERROR.replace("(", r"\(").replace(")", r"\)")):
            build(name, tmp_path, train_dataset=data)
        # ... and with the column precomputed (the fix the message names) the stream trains.
        from trl_basis import estimate_reference_rewards

        refs = estimate_reference_rewards(MODEL, hash_reward, dataset(), args=make_args(name, tmp_path))
        data = refs.to_iterable_dataset()
    trainer = build(name, tmp_path, train_dataset=data, args=make_args(name, tmp_path, max_steps=4))
    assert trainer.args.accelerator_config.dispatch_batches is False
    train_and_check(trainer)


@pytest.mark.parametrize("name", ALL)
def test_iterable_dataset_requires_dispatch_batches_false(name, tmp_path):
    args = make_args(name, tmp_path, accelerator_config={"dispatch_batches": True})
    with pytest.raises(ValueError, match="Iterable datasets require `dispatch_batches=False`"):
        build(name, tmp_path, args=args, train_dataset=dataset().to_iterable_dataset())


@pytest.mark.parametrize("name", ALL)
def test_iterable_eval_keeps_map_style_train_workers(name, tmp_path):
    args = make_args(name, tmp_path, dataloader_num_workers=4)
    trainer = build(name, tmp_path, args=args, eval_dataset=dataset(8, split="test").to_iterable_dataset())
    assert trainer.args.dataloader_num_workers == 4
    assert trainer.get_eval_dataloader().num_workers == 0


# ---------------------------------------------------------------------------------------------------- PEFT
@pytest.mark.parametrize("name", ALL)
def test_train_peft_config(name, tmp_path):
    from peft import LoraConfig

    trainer = build(name, tmp_path, peft_config=LoraConfig(target_modules=["q_proj", "v_proj"], r=4))
    before = snapshot(trainer)
    trainer.train()
    assert trainer.state.log_history[-1]["train_loss"] is not None
    for n, param in before.items():
        new = trainer.model.get_parameter(n)
        if "lora" in n:
            assert not torch.equal(param, new), f"Parameter {n} has not changed."
        else:  # the base model stays frozen
            assert torch.equal(param, new), f"Parameter {n} has changed."


@pytest.mark.parametrize("name", ALL)
def test_train_peft_model(name, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(MODEL), LoraConfig(target_modules=["q_proj"], r=4))
    trainer = build(name, tmp_path, model=model, processing_class=AutoTokenizer.from_pretrained(MODEL))
    before = snapshot(trainer, trainable_only=True)
    trainer.train()
    assert_trained(trainer, before)


# ---------------------------------------------------------------------------------------------------- rewards
def always_one(completions, **kwargs):
    return [1.0 for _ in completions]


async def async_hash_reward(completions, **kwargs):
    return hash_reward(completions, **kwargs)


def half_hash_reward(completions, **kwargs):
    return [r / 2 for r in hash_reward(completions, **kwargs)]


def half_length_reward(completions, **kwargs):
    return [r / 2 for r in length_reward(completions)]


def none_reward(completions, **kwargs):
    """Not applicable to any sample: returns None for all."""
    return [None] * len(completions)


REWARD_SCENARIOS = {  # TRL's reward-function scenarios, with rewards whose weighted sum stays in [0, 1]
    "reward_func_standard": ([hash_reward], {}),
    "multiple_reward_funcs": ([half_hash_reward, half_length_reward], {}),
    "sync_and_async_reward_funcs": ([half_hash_reward, async_hash_reward], dict(reward_weights=[1.0, 0.5])),
    "multiple_reward_funcs_with_None_output": ([hash_reward, none_reward], {}),
    "multiple_reward_funcs_with_weights": ([hash_reward, always_one], dict(reward_weights=[0.7, 0.3])),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scenario", list(REWARD_SCENARIOS))
def test_train_reward_funcs(name, scenario, tmp_path):
    funcs, extra = REWARD_SCENARIOS[scenario]
    trainer = build(name, tmp_path, args=make_args(name, tmp_path, **extra), reward_funcs=funcs)
    train_and_check(trainer)


@pytest.mark.parametrize("name", ALL)
def test_train_reward_func_conversational(name, tmp_path):
    # TRL rewards length here; the tiny model's answers to one prompt often have the same length, so: noisy.
    seen = []

    def reward_func(completions, **kwargs):
        seen.extend(completions)
        return hash_reward(completions, **kwargs)

    train_and_check(build(name, tmp_path, train_dataset=dataset(conversational=True), reward_funcs=reward_func))
    assert all(isinstance(c, list) and c[0]["role"] == "assistant" for c in seen)  # conversational completions


@pytest.mark.parametrize("name", ALL)
def test_train_reward_func_additional_column(name, tmp_path):
    data = dataset().add_column("some_values", list(range(16)))

    def reward_func(completions, some_values, **kwargs):
        noise = hash_reward(completions, **kwargs)
        return [(v % 4 + n) / 4 for v, n in zip(some_values, noise, strict=True)]

    train_and_check(build(name, tmp_path, train_dataset=data, reward_funcs=reward_func))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("aggregation", ["sum_then_normalize", "normalize_then_sum"])
def test_reward_metric_reflects_reward_weights(name, aggregation, tmp_path):
    if name == "basis" and aggregation == "normalize_then_sum":  # refused by design (see the README)
        with pytest.raises(ValueError, match=BASIS_AGGREGATION_ERROR):
            make_args(name, tmp_path, multi_objective_aggregation=aggregation)
        return
    args = make_args(name, tmp_path, reward_weights=[0.5, 0.5], multi_objective_aggregation=aggregation)
    trainer = build(name, tmp_path, args=args, reward_funcs=[always_one, hash_reward])
    trainer.train()
    for entry in trainer.state.log_history:
        if "reward" in entry:  # TRL: the logged reward is the weighted sum of the functions' means
            one, other = entry["rewards/always_one/mean"], entry["rewards/hash_reward/mean"]
            assert entry["reward"] == pytest.approx(0.5 * one + 0.5 * other, abs=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_train_normalize_then_sum_aggregation(name, tmp_path):
    if name == "basis":
        with pytest.raises(ValueError, match=BASIS_AGGREGATION_ERROR):
            make_args(name, tmp_path, multi_objective_aggregation="normalize_then_sum")
        return
    args = make_args(name, tmp_path, multi_objective_aggregation="normalize_then_sum")
    train_and_check(build(name, tmp_path, args=args, reward_funcs=[hash_reward, length_reward]))


@pytest.mark.parametrize("name", ALL)
def test_train_different_reward_model(name, tmp_path, reward_model_path):
    trainer = build(name, tmp_path, reward_funcs=reward_model_path)
    if name == "basis":  # a Bradley-Terry score is unbounded: refused by design, naming the reward model
        with pytest.raises(ValueError, match=BASIS_RANGE_ERROR + ".*reward_weights"):
            trainer.train()
        return
    train_and_check(trainer)


@pytest.mark.parametrize("name", ALL)
def test_train_multiple_mixed_reward_funcs(name, tmp_path, reward_model_path):
    trainer = build(name, tmp_path, reward_funcs=[reward_model_path, hash_reward])
    if name == "basis":
        with pytest.raises(ValueError, match=BASIS_RANGE_ERROR):
            trainer.train()
        return
    train_and_check(trainer)


@pytest.mark.parametrize("name", ALL)
def test_reward_processing_classes(name, tmp_path, reward_model_path):
    tokenizer = AutoTokenizer.from_pretrained(reward_model_path)
    with pytest.raises(ValueError, match="must match"):
        build(name, tmp_path, reward_funcs=[reward_model_path, hash_reward], reward_processing_classes=[tokenizer])
    trainer = build(
        name, tmp_path, reward_funcs=[reward_model_path, hash_reward], reward_processing_classes=[tokenizer, None]
    )
    assert trainer.reward_processing_classes[0] is tokenizer


@pytest.mark.parametrize("name", ALL)
def test_warning_raised_all_rewards_none(name, tmp_path, caplog):
    trainer = build(name, tmp_path, reward_funcs=none_reward)
    with caplog.at_level("WARNING", logger="trl.trainer.grpo_trainer"):
        trainer.train()
    assert "All reward functions returned None for the following kwargs:" in caplog.text


@pytest.mark.parametrize("name", ALL)
def test_train_with_reward_func_accessing_trainer_state(name, tmp_path):
    seen = []

    def reward_func(completions, **kwargs):
        seen.append(kwargs["trainer_state"].global_step)
        return hash_reward(completions)

    build(name, tmp_path, reward_funcs=reward_func).train()
    assert seen and max(seen) >= 1


@pytest.mark.parametrize("name", ALL)
def test_train_reward_func_with_log_extra_and_log_metric(name, tmp_path):
    def reward_func(completions, **kwargs):
        kwargs["log_extra"]("test_column", [text(c)[:5] for c in completions])
        kwargs["log_metric"]("custom_accuracy", 0.75)
        return hash_reward(completions)

    trainer = build(name, tmp_path, args=make_args(name, tmp_path, log_completions=True), reward_funcs=reward_func)
    trainer.train()
    assert "test_column" in trainer._logs["extra"]
    assert "custom_accuracy" in {k for entry in trainer.state.log_history for k in entry}


@pytest.mark.parametrize("name", ALL)
def test_no_reward_source_raises(name, tmp_path):
    with pytest.raises(ValueError, match="No reward source provided"):
        trainer_class(name)(model=MODEL, args=make_args(name, tmp_path), train_dataset=dataset())


@pytest.mark.parametrize("name", ALL)
def test_dataset_required_without_environment(name, tmp_path):
    with pytest.raises(ValueError, match="`train_dataset` is required"):
        build(name, tmp_path, train_dataset=None)


# ---------------------------------------------------------------------------------------------------- masking
def fake_generate_from(tokenizer, completions_for):
    """`model.generate` returning `prompt + completion`, the completion text chosen per row by `completions_for`."""

    def fake_generate(input_ids, **kwargs):
        prompts = tokenizer.batch_decode(input_ids, skip_special_tokens=False)
        rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in completions_for(prompts)]
        width = max(map(len, rows))
        padded = [row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows]
        return torch.cat([input_ids, torch.tensor(padded, device=input_ids.device)], dim=-1)

    return fake_generate


@pytest.mark.parametrize("name", ALL)
def test_train_with_mask_truncated_completions(name, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    # Per row: truncated (no EOS within 8 tokens), EOS early, EOS exactly at the limit; then repeat.
    kinds = ["12345678", "97<|im_end|>", "1234567<|im_end|>", "3<|im_end|>"]
    args = make_args(name, tmp_path, mask_truncated_completions=True, loss_type="dapo")
    trainer = build(name, tmp_path, args=args, reward_funcs=length_reward)
    fake = fake_generate_from(tokenizer, lambda prompts: [kinds[i % 4] for i in range(len(prompts))])
    with patch.object(trainer.model, "generate", side_effect=fake):
        train_and_check(trainer)


# ---------------------------------------------------------------------------------------------------- rollout_func
@pytest.mark.parametrize("name", ALL)
def test_rollout_func_extra_fields_reach_the_rewards(name, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    seen_tags = []

    def rollout_func(prompts, trainer):
        prompt_ids = [tokenizer(str(p))["input_ids"][-8:] for p in prompts]
        completion_ids = [tokenizer(f"{i % 10}<|im_end|>")["input_ids"] for i in range(len(prompts))]
        logprobs = [[-1.0] * len(ids) for ids in completion_ids]
        tags = ["even" if i % 2 == 0 else "odd" for i in range(len(prompts))]
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs, "rollout_tag": tags}

    def tag_reward(completions, rollout_tag, **kwargs):
        seen_tags.extend(rollout_tag)
        return [0.75 if t == "even" else 0.25 for t in rollout_tag]

    trainer = build(name, tmp_path, reward_funcs=tag_reward, rollout_func=rollout_func)
    trainer.train()
    assert trainer.state.log_history[-1]["train_loss"] is not None
    assert set(seen_tags) == {"even", "odd"}
    assert trainer.state.log_history[0]["reward"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------- tools
def multiply_tool(a: int, b: int) -> int:
    """
    Multiplies two integers.

    Args:
        a: The first integer.
        b: The second integer.

    Returns:
        The product of the two integers.
    """
    return a * b


async def async_multiply_tool(a: int, b: int) -> int:
    """
    Asynchronously multiplies two integers.

    Args:
        a: The first integer.
        b: The second integer.

    Returns:
        The product of the two integers.
    """
    return a * b


def tool_tokenizer():
    """The tiny tokenizer with Qwen3's chat template, whose tool calls TRL knows how to parse (its tokens are
    characters, so it can write any tool call)."""
    from trl.chat_template_utils import qwen3_chat_template

    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    tokenizer.chat_template = qwen3_chat_template
    return tokenizer


def tool_args(name: str, tmp_path, **overrides):
    # Groups of 3 (GRPO, MaxPO) or 3 prompts (BASIS, whose offline stage samples 3 per prompt, one prompt a batch):
    # every first-turn generation is a batch of 3 rows, as in TRL's test.
    extra = dict(per_device_train_batch_size=3, max_completion_length=256, max_steps=2)
    if name == "basis":
        extra.update(num_reference_samples=3, reference_batch_size=1)
    return make_args(name, tmp_path, num_generations=3, **{**extra, **overrides})


def tool_turns(valid: str, invalid: str, plain: str = "I don't know any tool<|im_end|>"):
    """Row i of a first turn: a valid tool call, an invalid one, no call (i mod 3); after a tool answer: 'Done!'."""

    def completions_for(prompts):
        return [
            "Done!<|im_end|>" if "<tool_response>" in p else [valid, invalid, plain][i % 3]
            for i, p in enumerate(prompts)
        ]

    return completions_for


def call(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call><|im_end|>'


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("tool", [multiply_tool, async_multiply_tool], ids=["sync", "async"])
def test_train_with_tools(name, tool, tmp_path):
    tokenizer = tool_tokenizer()
    trainer = build(
        name,
        tmp_path,
        args=tool_args(name, tmp_path),
        train_dataset=dataset(12, conversational=True),
        reward_funcs=length_reward,
        tools=[tool],
        processing_class=tokenizer,
    )
    turns = tool_turns(call(tool.__name__, '{"a": 3, "b": 4}'), call(tool.__name__, '{"a": 3, "c": 4}'))
    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake_generate_from(tokenizer, turns)):
        trainer.train()
    assert_trained(trainer, before)
    assert last_logged(trainer, "tools/call_frequency") == pytest.approx(2 / 3)
    assert last_logged(trainer, "tools/failure_frequency") == pytest.approx(1 / 2)


@pytest.mark.parametrize("name", ALL)
def test_train_with_malformed_tool_calls(name, tmp_path):
    tokenizer = tool_tokenizer()
    trainer = build(
        name,
        tmp_path,
        args=tool_args(name, tmp_path),
        train_dataset=dataset(12, conversational=True),
        reward_funcs=length_reward,
        tools=[multiply_tool],
        processing_class=tokenizer,
    )
    malformed = [
        '<tool_call>\n{"arguments": {"a": 3, "b": 4}}\n</tool_call><|im_end|>',  # no name
        '<tool_call>\n{"arguments": {"a": 3, "b": 4}}\n</tool_call' + "x" * 20 + "<|im_end|>",  # unclosed
        "<tool_call>\n{arguments: {a: 3, b: 4}}\n</tool_call><|im_end|>",  # not JSON
    ]
    fake = fake_generate_from(tokenizer, lambda prompts: [malformed[i % 3] for i in range(len(prompts))])
    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake):
        trainer.train()
    assert_trained(trainer, before)


# ---------------------------------------------------------------------------------------------------- environments
class CounterEnvironment:
    def reset(self, **kwargs):
        self._counter = 0

    def increment(self, step: int) -> int:
        """
        Increment the internal counter.

        Args:
            step: Value to add to the counter.

        Returns:
            The updated counter value.
        """
        self._counter += step
        return self._counter


class RewardedCounterEnvironment(CounterEnvironment):
    def get_reward(self) -> float:
        return float(self._counter)


def environment_trainer(name, tmp_path, environment_factory, reward_funcs=length_reward, train_dataset="default"):
    tokenizer = tool_tokenizer()
    data = dataset(12, conversational=True) if isinstance(train_dataset, str) else train_dataset
    trainer = build(
        name,
        tmp_path,
        args=tool_args(name, tmp_path),
        train_dataset=data,
        reward_funcs=reward_funcs,
        environment_factory=environment_factory,
        processing_class=tokenizer,
    )
    return trainer, tokenizer


INCREMENT = tool_turns(
    call("increment", '{"step": 1}'), call("decrement", '{"step": 2}'), "I won't increment<|im_end|>"
)


@pytest.mark.parametrize("name", ALL)
def test_train_with_environment_factory(name, tmp_path):
    trainer, tokenizer = environment_trainer(name, tmp_path, CounterEnvironment)
    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake_generate_from(tokenizer, INCREMENT)):
        trainer.train()
    assert_trained(trainer, before)
    assert last_logged(trainer, "tools/call_frequency") == pytest.approx(2 / 3)
    assert last_logged(trainer, "tools/failure_frequency") == pytest.approx(1 / 2)
    assert [env._counter for env in trainer.environments] == [1, 0, 0]


@pytest.mark.parametrize("name", ALL)
def test_train_with_environment_owned_reward(name, tmp_path):
    trainer, tokenizer = environment_trainer(name, tmp_path, RewardedCounterEnvironment, reward_funcs=None)
    assert trainer.reward_func_names == ["RewardedCounterEnvironment"]
    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake_generate_from(tokenizer, INCREMENT)):
        trainer.train()
    assert_trained(trainer, before)
    # Counters 1, 0, 0 -> rewards 1, 0, 0 in every generation batch.
    assert last_logged(trainer, "rewards/RewardedCounterEnvironment/mean") == pytest.approx(1 / 3)
    if name == "basis":  # the offline stage scored the environment's own reward too: 3 samples of 1, 0, 0
        assert trainer.train_dataset["reference_rewards"][0] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("name", ALL)
def test_environment_owned_reward_coexists_with_reward_funcs(name, tmp_path):
    trainer, tokenizer = environment_trainer(
        name, tmp_path, RewardedCounterEnvironment, reward_funcs=[half_length_reward]
    )
    assert trainer.reward_func_names == ["half_length_reward", "RewardedCounterEnvironment"]
    assert trainer.reward_weights.tolist() == [1.0, 1.0]  # TRL gives the environment's reward weight 1
    trainer.reward_weights = torch.tensor([1.0, 0.5])  # keeps the sum in [0, 1], which BASIS needs
    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake_generate_from(tokenizer, INCREMENT)):
        trainer.train()
    assert_trained(trainer, before)


@pytest.mark.parametrize("name", ALL)
def test_train_with_multiple_environments(name, tmp_path):
    # A dataset holding only an `environment` column: each environment's reset() writes the prompt.
    reset_kwargs_seen = {"counter": [], "echo": []}
    calls = {"increment": [], "shout": []}

    class Counter:
        def reset(self, **kwargs):
            reset_kwargs_seen["counter"].append(kwargs)
            return "Count."

        def increment(self, step: int) -> int:
            """
            Increment the internal counter.

            Args:
                step: Value to add to the counter.

            Returns:
                The updated counter value.
            """
            calls["increment"].append(step)
            return step

    class Echo:
        def reset(self, **kwargs):
            reset_kwargs_seen["echo"].append(kwargs)
            return "Echo."

        def shout(self, text: str) -> str:
            """
            Shout the given text.

            Args:
                text: Text to shout.

            Returns:
                The text in upper case.
            """
            calls["shout"].append(text)
            return text.upper()

    tokenizer = tool_tokenizer()
    data = Dataset.from_dict({"environment": ["counter", "counter", "echo", "echo"] * 4})
    args = make_args(
        name,
        tmp_path,
        num_generations=2,
        per_device_train_batch_size=4,
        shuffle_dataset=False,
        max_completion_length=256,
    )
    if name == "basis":
        args.num_reference_samples, args.reference_batch_size = 2, 2
    trainer = build(
        name,
        tmp_path,
        args=args,
        train_dataset=data,
        reward_funcs=hash_reward,
        environment_factory={"counter": Counter, "echo": Echo},
        processing_class=tokenizer,
    )
    assert [tool.__name__ for tool in trainer._env_tools["counter"]] == ["increment"]
    assert [tool.__name__ for tool in trainer._env_tools["echo"]] == ["shout"]

    def completions_for(prompts):
        out = []
        for p in prompts:
            if "<tool_response>" in p:
                out.append("Done!<|im_end|>")
            elif "Count." in p:
                out.append(call("increment", '{"step": 1}'))
            else:
                out.append(call("shout", '{"text": "hi"}'))
        return out

    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake_generate_from(tokenizer, completions_for)):
        trainer.train()
    assert_trained(trainer, before)
    assert calls["increment"] and calls["shout"]
    assert last_logged(trainer, "tools/failure_frequency") == pytest.approx(0.0)
    assert all("environment" not in kw for kw in reset_kwargs_seen["counter"] + reset_kwargs_seen["echo"])


@pytest.mark.parametrize("name", ALL)
def test_train_with_unknown_environment_raises(name, tmp_path):
    data = dataset(12, conversational=True).map(lambda x: {"environment": "unknown"})
    trainer, _ = environment_trainer(name, tmp_path, {"counter": CounterEnvironment}, train_dataset=data)
    with pytest.raises(ValueError, match="not among the environments"):
        trainer.train()


class GuessTheWordEnvironment:
    def reset(self, **kwargs):
        return "Guess the 5-letter word."  # the environment owns the data and returns the prompt


BASIS_ENVIRONMENT_OWNED_ERROR = "BASISTrainer needs a train_dataset: its baseline weights each row by reference"


@pytest.mark.parametrize("name", ALL)
def test_train_with_environment_owned_data(name, tmp_path):
    tokenizer = tool_tokenizer()
    args = tool_args(name, tmp_path, max_steps=2, max_completion_length=8)
    if name == "basis":  # refused by design, after TRL's own checks: no row to estimate reference values for
        with pytest.raises(ValueError, match=BASIS_ENVIRONMENT_OWNED_ERROR):
            build(
                name,
                tmp_path,
                args=args,
                train_dataset=None,
                reward_funcs=length_reward,
                environment_factory=GuessTheWordEnvironment,
                processing_class=tokenizer,
            )
        return
    trainer = build(
        name,
        tmp_path,
        args=args,
        train_dataset=None,
        reward_funcs=length_reward,
        environment_factory=GuessTheWordEnvironment,
        processing_class=tokenizer,
    )
    rows = ["Done!<|im_end|>", "DoneDone!<|im_end|>", "DoneDoneDone!<|im_end|>"]
    fake = fake_generate_from(tokenizer, lambda prompts: [rows[i % 3] for i in range(len(prompts))])
    before = snapshot(trainer)
    with patch.object(trainer.model, "generate", side_effect=fake):
        trainer.train()
    assert_trained(trainer, before)


@pytest.mark.parametrize("name", ALL)
def test_environment_owned_data_requires_max_steps(name, tmp_path):
    args = tool_args(name, tmp_path, max_steps=-1)
    with pytest.raises(ValueError, match="max_steps"):
        build(
            name,
            tmp_path,
            args=args,
            train_dataset=None,
            environment_factory=GuessTheWordEnvironment,
            processing_class=tool_tokenizer(),
        )


@pytest.mark.parametrize("name", ALL)
def test_multiple_environments_without_dataset_raises(name, tmp_path):
    with pytest.raises(ValueError, match="requires a `train_dataset`"):
        build(
            name,
            tmp_path,
            args=tool_args(name, tmp_path),
            train_dataset=None,
            processing_class=tool_tokenizer(),
            environment_factory={"a": GuessTheWordEnvironment, "b": GuessTheWordEnvironment},
        )


@pytest.mark.slow
def test_grpo_trainer_two_steps_change_parameters(tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    # The easier levels, where the shipped model is right on some samples and wrong on others, and groups of 8, so
    # that some groups have reward variance (a group whose samples all score the same has zero advantages).
    dataset = make_arithmetic_dataset(num_train=64, num_test=8, seed=1, difficulties=[1, 2, 3])["train"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = GRPOConfig(
        output_dir=str(tmp_path),
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to="none",
        per_device_train_batch_size=32,
        num_generations=8,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=arithmetic_reward, args=args, train_dataset=dataset)
    trainer.train()
    changed = [name for name, p in trainer.model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert changed, "no parameter changed after two GRPO steps"
    logged = [log for log in trainer.state.log_history if "reward" in log]
    assert logged and all(0.0 <= log["reward"] <= 1.0 for log in logged)
    assert any(key.startswith("rewards/arithmetic_reward") for log in logged for key in log)
    assert any(log.get("frac_reward_zero_std", 1.0) < 1.0 for log in logged)
