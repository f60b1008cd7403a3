"""BASISTrainer: real training steps on the shipped tiny model (CPU, offline)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, changed, prompt_reward, recording, snapshot, tiny_model_path

from trl_basis import BASISConfig, BASISTrainer
from trl_basis.advantages import beta_grid, calibrate_beta, reference_values
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset


def config(tmp_path, **overrides) -> BASISConfig:
    kwargs = dict(
        CPU,
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,  # one optimizer step = one generation batch of 16 prompts
        max_steps=2,
        reference_cache_dir=str(tmp_path / "cache"),
    )
    kwargs.update(overrides)
    return BASISConfig(**kwargs)


def expected_advantages(record, args: BASISConfig):
    """The advantage of ALGORITHMS.md §1d, computed from what TRL gathered, with the library's pure functions."""
    rewards = record["rewards_per_func"].double().sum(dim=1)  # one reward function, weight 1
    refs = torch.tensor(record["columns"][args.reference_rewards_column], dtype=torch.float64)
    betas = beta_grid(args.basis_temperature_num, args.basis_temperature_min, args.basis_temperature_max)
    result = calibrate_beta(rewards, reference_values(refs, betas), betas, args.basis_epsilon, args.basis_fallback)
    advantages = rewards - result.baseline
    if args.scale_rewards == "batch":
        advantages = advantages / (advantages.std() + 1e-4)
    return advantages, result


@pytest.mark.slow
@pytest.mark.parametrize("scaling", ["batch", "none"])
def test_training_changes_parameters_and_loss_gets_basis_advantages(tmp_path, scaling):
    args = config(tmp_path, scale_rewards=scaling)
    trainer = recording(BASISTrainer)(
        tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64)
    )
    before = snapshot(trainer.model)
    trainer.train()
    assert changed(before, trainer.model), "no parameter changed after two BASIS steps"

    assert len(trainer.records) == 2
    logged = [h for h in trainer.state.log_history if "basis/temperature" in h]
    for step, record in enumerate(trainer.records):
        expected, result = expected_advantages(record, args)
        got = record["local_advantages"].double()
        assert got.shape == (16,)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        # The loss received exactly these advantages (split over 2 micro-batches, in TRL's shuffled order).
        received = torch.cat(trainer.loss_advantages[2 * step : 2 * step + 2]).double()
        torch.testing.assert_close(received.sort().values, got.sort().values)
        # The logged metrics are the ones the math predicts.
        assert logged[step]["basis/temperature"] == pytest.approx(result.beta.item())
        assert logged[step]["basis/criterion"] == pytest.approx(result.criterion[result.index].item())
        assert logged[step]["basis/fallback_count"] == result.num_fallback
    assert trainer._estimator_state["temperature"] == pytest.approx([h["basis/temperature"] for h in logged])


@pytest.mark.slow
def test_lora_trains_only_the_adapter(tmp_path):
    from peft import LoraConfig

    trainer = BASISTrainer(
        tiny_model_path(),
        [prompt_reward],
        args=config(tmp_path, max_steps=1),
        train_dataset=arithmetic_train(64),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    before = snapshot(trainer.model)
    trainer.train()
    moved = changed(before, trainer.model)
    assert moved and all("lora_" in name for name in moved), moved
    assert any("lora_A" in name for name in moved) or any("lora_B" in name for name in moved)


class CountingBASISTrainer(BASISTrainer):
    samplings = 0

    def _sample_reference_rewards(self, dataset, **kwargs):
        type(self).samplings += 1
        return super()._sample_reference_rewards(dataset, **kwargs)


@pytest.mark.slow
def test_offline_stage_samples_scores_and_is_cached(tmp_path):
    data = arithmetic_train(48, with_references=False)
    args = config(tmp_path, num_reference_samples=4, filter_constant_prompts=False, max_steps=1)
    first = CountingBASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=data)
    assert CountingBASISTrainer.samplings == 0, "the offline stage runs at train(), not in __init__"
    first.prepare_reference_rewards()
    assert CountingBASISTrainer.samplings == 1
    refs = first.train_dataset["reference_rewards"]
    assert len(refs) == 48 and all(len(r) == 4 for r in refs)
    # prompt_reward depends on the prompt only, so each prompt's 4 samples score the same: row by row.
    assert refs == [[prompt_reward(None, None, [a])[0]] * 4 for a in data["answer"]]
    assert not any(h for h in [first._metrics["train"]] if h), "offline stage leaked into the training metrics"

    second = CountingBASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=data)
    second.prepare_reference_rewards()
    assert CountingBASISTrainer.samplings == 1, "the second run sampled again instead of using the cache"
    assert second.train_dataset["reference_rewards"] == refs


@pytest.mark.slow
def test_offline_stage_with_a_real_reward_then_filtering(tmp_path):
    from trl_basis.tasks import arithmetic_reward

    # Levels 2-3: the shipped model solves about 94% and 11% of them, so many prompts get mixed references.
    data = arithmetic_train(96, with_references=False, difficulties=(2, 3))
    args = config(tmp_path, num_reference_samples=8, max_steps=1)
    trainer = BASISTrainer(tiny_model_path(), [arithmetic_reward], args=args, train_dataset=data)
    refs = trainer.prepare_reference_rewards()["reference_rewards"]
    assert 16 <= len(refs) < 96  # the partly-right model leaves some prompts always right or always wrong
    assert all(0 < sum(r) < 8 and set(r) <= {0.0, 1.0} for r in refs)
    before = snapshot(trainer.model)
    trainer.train()
    assert changed(before, trainer.model)


@pytest.mark.slow
def test_checkpoint_resumes_with_calibration_state(tmp_path):
    args = config(tmp_path, save_strategy="steps", save_steps=1, max_steps=2)
    first = BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64))
    first.train()
    betas = first._estimator_state["temperature"]
    assert len(betas) == 2

    resumed = BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64))
    resumed.args.max_steps = 2
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-1"))
    assert resumed.state.global_step == 2
    assert resumed._estimator_state["temperature"][0] == pytest.approx(betas[0])  # restored from checkpoint-1
    assert len(resumed._estimator_state["temperature"]) == 2  # and extended by the resumed step


@pytest.mark.slow
def test_checkpoint_resumes_rolling_value_rows(tmp_path):
    """The rolling windows are estimator state: saved with each checkpoint and restored on resume."""
    args = config(tmp_path, save_strategy="steps", save_steps=1, max_steps=2, basis_values="rolling")
    first = BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(16))
    first.train()
    saved = json.loads((tmp_path / "out" / "checkpoint-1" / "trl_basis_state.json").read_text())
    assert len(saved["rows"]) == 16 and saved["rows"] != {}
    resumed = BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(16))
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-1"))
    # Every prompt came back at step 2 from its step-1 window: the resumed windows equal the uninterrupted run's.
    assert resumed._estimator_state["rows"] == first._estimator_state["rows"]


@pytest.mark.slow
def test_rows_without_reward_get_zero_advantage(tmp_path):
    def sometimes_none(prompts, completions, answer, **kwargs):
        return [None if i % 4 == 0 else r for i, r in enumerate(prompt_reward(prompts, completions, answer))]

    trainer = recording(BASISTrainer)(
        tiny_model_path(), [sometimes_none], args=config(tmp_path, max_steps=1), train_dataset=arithmetic_train(64)
    )
    trainer.train()
    record = trainer.records[0]
    missing = torch.isnan(record["rewards_per_func"][:, 0])
    assert missing.sum() == 4
    assert torch.all(record["local_advantages"][missing] == 0)
    assert torch.isfinite(record["local_advantages"]).all()
    assert (record["local_advantages"][~missing] != 0).any()


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.slow
def test_reward_out_of_range_names_the_function(tmp_path):
    def doubled(prompts, completions, answer, **kwargs):
        return [2 * r for r in prompt_reward(prompts, completions, answer)]

    with pytest.raises(ValueError, match=r"doubled.*\[0, 2\].*reward_weights"):
        BASISTrainer(
            tiny_model_path(),
            [doubled],
            args=config(tmp_path, num_reference_samples=2),
            train_dataset=arithmetic_train(32, with_references=False),
        ).train()  # the offline stage runs at the start of train()


def test_missing_column_with_no_reference_samples(tmp_path):
    with pytest.raises(ValueError, match="no 'reference_rewards' column and num_reference_samples=0"):
        BASISTrainer(
            tiny_model_path(),
            [prompt_reward],
            args=config(tmp_path, num_reference_samples=0),
            train_dataset=arithmetic_train(32, with_references=False),
        )


@pytest.mark.slow
def test_no_prompt_left_after_filtering(tmp_path):
    data = arithmetic_train(32, with_references=False)
    data = data.add_column("reference_rewards", [[1.0] * 8] * len(data))
    with pytest.raises(ValueError, match="No prompt is left after filtering"):
        BASISTrainer(tiny_model_path(), [prompt_reward], args=config(tmp_path), train_dataset=data)


def test_dataset_smaller_than_one_generation_batch(tmp_path):
    with pytest.raises(ValueError, match=r"Only 12 training prompts.*generation_batch_size=16"):
        BASISTrainer(tiny_model_path(), [prompt_reward], args=config(tmp_path), train_dataset=arithmetic_train(12))


def test_config_rejects_group_sampling_and_bad_fields(tmp_path):
    with pytest.raises(ValueError, match="one completion per prompt"):
        config(tmp_path, num_generations=4)
    with pytest.raises(ValueError, match="basis_fallback"):
        config(tmp_path, basis_fallback="mean")
    with pytest.raises(ValueError, match="at least 2 prompts"):
        config(tmp_path, per_device_train_batch_size=1, gradient_accumulation_steps=1)
    # An odd generation batch is fine: nothing requires groups.
    assert config(tmp_path, per_device_train_batch_size=5, gradient_accumulation_steps=1).generation_batch_size == 5


@pytest.mark.slow
def test_estimate_reference_rewards_public_function(tmp_path):
    from trl_basis import estimate_reference_rewards

    data = arithmetic_train(40, with_references=False)
    out = estimate_reference_rewards(
        tiny_model_path(), [prompt_reward], data, args=config(tmp_path, num_reference_samples=2)
    )
    assert len(out) == 40, "the public function must not filter constant prompts"
    assert out["reference_rewards"] == [[r, r] for r in prompt_reward(None, None, data["answer"])]


@pytest.mark.slow
def test_short_basis_run_raises_the_reward_of_the_kept_prompts(tmp_path):
    """Behaviour, not timing: 40 seeded BASIS steps on the default task (real offline stage, real rewards) raise the
    sampled pass rate of the prompts BASIS kept by a margin far above its noise (the paired standard error over
    prompts of the per-prompt change)."""
    from trl_basis.evaluation import sample_rewards
    from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset

    train = make_arithmetic_dataset(num_train=256, num_test=8, seed=0)["train"]
    args = config(
        tmp_path,
        per_device_train_batch_size=64,
        gradient_accumulation_steps=1,
        max_steps=40,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        seed=0,
    )
    trainer = BASISTrainer(tiny_model_path(), [arithmetic_reward], args=args, train_dataset=train)
    kept = trainer.prepare_reference_rewards()
    assert 0.5 * len(train) < len(kept) < len(train)  # informative prompts kept, constant ones dropped

    def pass_rates():
        return sample_rewards(trainer, kept, 8, seed=123).mean(dim=1)

    before = pass_rates()
    trainer.train()
    after = pass_rates()
    change = after - before
    gain, stderr = change.mean().item(), (change.std() / len(change) ** 0.5).item()
    print(
        f"kept-prompt pass rate {before.mean():.3f} -> {after.mean():.3f} (gain {gain:.3f}, paired s.e. {stderr:.3f})"
    )
    assert gain > 4 * stderr and gain > 0.05, (gain, stderr)
    # TRL's logged training reward (one completion per kept prompt) rose as well.
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    assert sum(rewards[-10:]) / 10 > sum(rewards[:10]) / 10


@pytest.mark.slow
def test_history_option_blends_each_baseline_with_the_prompts_past_rewards(tmp_path):
    """basis_history=True (ALGORITHMS.md §1e): replaying what TRL gathered, the advantages of every step equal the
    batch baseline blended with the discounted counts of the SAME prompt's rewards in earlier steps."""

    from trl_basis.advantages import blend_with_history, spo_tracker_update

    data = arithmetic_train(16)  # 16 prompts, 16 per step: every prompt comes back every step
    args = config(tmp_path, max_steps=3, basis_history=True, basis_history_discount=0.5, scale_rewards="none")
    trainer = recording(BASISTrainer)(tiny_model_path(), [prompt_reward], args=args, train_dataset=data)
    trainer.train()
    history: dict[str, tuple[float, float]] = {}
    revisited = 0
    for record in trainer.records:
        rewards = record["rewards_per_func"].double().sum(dim=1)
        plain, _ = expected_advantages(record, args)
        keys = [json.dumps(p, sort_keys=True, default=str) for p in record["columns"]["prompt"]]
        counts = torch.tensor([history.get(k, (0.0, 0.0)) for k in keys], dtype=torch.float64)
        n = [float(len(r)) for r in record["columns"][args.reference_rewards_column]]
        expected = rewards - blend_with_history(rewards - plain, counts[:, 0], counts[:, 1], torch.tensor(n))
        torch.testing.assert_close(record["local_advantages"].double(), expected, rtol=1e-5, atol=1e-5)
        revisited += int((counts.sum(dim=1) > 0).sum())
        for k, r in zip(keys, rewards.tolist(), strict=True):
            history[k] = spo_tracker_update(*history.get(k, (0.0, 0.0)), r, 0.5)
    assert revisited >= 16  # the later steps really used the history
    saved = trainer._estimator_state["history"]
    assert saved.keys() == history.keys()
    for key, counts in history.items():
        assert saved[key] == pytest.approx(list(counts))
    logged = [h for h in trainer.state.log_history if "basis/history_fraction" in h]
    assert logged[0]["basis/history_fraction"] == 0.0 and logged[-1]["basis/history_fraction"] == 1.0


@pytest.mark.slow
def test_group_statistics_of_one_completion_are_not_logged(tmp_path):
    """TRL's frac_reward_zero_std is computed over groups of one completion (always 1.0): BASIS drops it, and
    keeps the batch's reward_std."""
    trainer = BASISTrainer(
        tiny_model_path(), [prompt_reward], args=config(tmp_path, max_steps=1), train_dataset=arithmetic_train(64)
    )
    trainer.train()
    (logged,) = [h for h in trainer.state.log_history if "reward" in h]
    assert "frac_reward_zero_std" not in logged and logged["reward_std"] > 0


@pytest.mark.slow
def test_offline_stage_runs_trls_full_generation_path_rollout_func_extra_fields(tmp_path):
    """The offline stage samples through GRPOTrainer's per-batch path, like training: a `rollout_func` whose extra
    fields feed the reward functions works there too (it failed with "missing 'rollout_tag'" when the stage called
    `_generate` directly)."""

    def rollout_func(prompts, trainer):
        tok = trainer.processing_class
        prompt_ids = [
            list(tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=False))
            for p in prompts
        ]
        completion_ids = [tok.encode("7", add_special_tokens=False) + [tok.eos_token_id] for _ in prompts]
        tags = ["even" if i % 2 == 0 else "odd" for i in range(len(prompts))]
        logprobs = [[-1.0] * len(c) for c in completion_ids]
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs, "rollout_tag": tags}

    def tag_reward(prompts, completions, rollout_tag, **kwargs):
        return [1.0 if tag == "even" else 0.0 for tag in rollout_tag]

    args = config(tmp_path, num_reference_samples=4, reference_batch_size=8, max_steps=1)
    trainer = BASISTrainer(
        tiny_model_path(),
        [tag_reward],
        args=args,
        train_dataset=arithmetic_train(32, with_references=False),
        rollout_func=rollout_func,
    )
    # Each prompt's 4 samples are consecutive rows: the tags alternate, so every prompt scores [1, 0, 1, 0].
    assert trainer.prepare_reference_rewards()["reference_rewards"] == [[1.0, 0.0, 1.0, 0.0]] * 32
    trainer.train()
    assert trainer.state.global_step == 1


def test_basis_refuses_a_bad_reference_column_before_the_model_loads(tmp_path):
    from trl_basis import BASISTrainer

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    data = data.add_column("reference_rewards", [[0.0, 1.7]] + [[0.0, 1.0]] * 15)
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_reference_samples=0)
    with pytest.raises(ValueError, match="row 0 of column 'reference_rewards' holds 1.7, outside"):
        BASISTrainer(str(tmp_path / "no-model"), arithmetic_reward, args=args, train_dataset=data)


@pytest.mark.slow
def test_basis_uses_none_and_ragged_reference_rows_as_missing_samples(tmp_path):
    """Rows with None and rows of different lengths are missing samples: the value table treats them like NaN."""
    from trl_basis import BASISTrainer
    from trl_basis.advantages import beta_grid, reference_values
    from trl_basis.advantages.estimators import _value_table

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    rows = [[0.0, 1.0, None], [1.0, 0.0]] * 8
    trainer = BASISTrainer(
        tiny_model_path(),
        arithmetic_reward,
        args=BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=1),
        train_dataset=data.add_column("reference_rewards", rows),
    )
    table = _value_table(rows[:2], trainer.args)
    nan = float("nan")
    expected = reference_values(torch.tensor([[0.0, 1.0, nan], [0.0, 1.0, nan]]), beta_grid())
    torch.testing.assert_close(table, expected)


@pytest.mark.slow
def test_offline_stage_recomputes_when_answers_change_and_survives_an_unusable_cache(tmp_path, capsys):
    """Same model, same prompts, other answers: the cache must not be reused. And a cache path that is a file
    costs a warning, not the sampled work."""
    from trl_basis import BASISTrainer

    calls = []

    def counting_reward(prompts, completions, answer, **kwargs):
        calls.append(len(prompts))
        return arithmetic_reward(prompts, completions, answer, **kwargs)

    data = make_arithmetic_dataset(num_train=16, num_test=2)["train"]
    wrong = data.map(lambda row: {"answer": str(int(row["answer"]) + 1)})

    def build(dataset, cache):
        args = BASISConfig(
            **CPU,
            output_dir=str(tmp_path / "out"),
            per_device_train_batch_size=8,
            num_reference_samples=2,
            reference_batch_size=16,
            reference_cache_dir=cache,
            filter_constant_prompts=False,
        )
        trainer = BASISTrainer(tiny_model_path(), counting_reward, args=args, train_dataset=dataset)
        trainer.prepare_reference_rewards()
        return trainer

    cache = str(tmp_path / "cache")
    right = build(data, cache).train_dataset["reference_rewards"]
    sampled = len(calls)
    build(data, cache)
    assert len(calls) == sampled  # same data: the cache was used
    off = build(wrong, cache).train_dataset["reference_rewards"]
    assert len(calls) > sampled  # other answers: recomputed, not the first run's rewards
    assert sum(map(sum, off)) < sum(map(sum, right))  # the model rarely writes the off-by-one "answer"

    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    trainer = build(data, str(a_file))
    assert len(trainer.train_dataset["reference_rewards"]) == 16
    assert "is not usable" in capsys.readouterr().err


def test_basis_refuses_normalize_then_sum_and_says_what_to_use(tmp_path):

    with pytest.raises(ValueError, match="no group in which to normalise.*sum_then_normalize"):
        BASISConfig(
            **CPU,
            output_dir=str(tmp_path),
            per_device_train_batch_size=8,
            multi_objective_aggregation="normalize_then_sum",
        )


def _replay_windows(trainer, args, start_rows):
    """Replay what TRL gathered with plain lists: each step, every prompt's window as it stood BEFORE the step; the
    expected advantages from the library's (separately tested) calibration; then the step's rewards join."""
    betas = beta_grid(args.basis_temperature_num, args.basis_temperature_min, args.basis_temperature_max)
    windows: dict[str, list[float]] = {}
    revisited = 0
    for record in trainer.records:
        rewards = record["rewards_per_func"].double().sum(dim=1)
        keys = [json.dumps(p, sort_keys=True, default=str) for p in record["columns"]["prompt"]]
        rows = [list(windows[k]) if k in windows else start_rows(record, i) for i, k in enumerate(keys)]
        revisited += sum(k in windows for k in keys)
        usable = [len(row) >= args.basis_min_samples for row in rows]
        width = max([len(row) for row in rows] + [1])
        padded = [row + [math.nan] * (width - len(row)) if ok else [math.nan] * width for row, ok in zip(rows, usable)]
        table = reference_values(torch.tensor(padded, dtype=torch.float64), betas)
        result = calibrate_beta(rewards, table, betas, args.basis_epsilon, "initial")
        baseline = result.baseline.clone()
        for i, ok in enumerate(usable):
            if not ok:  # the leave-one-out batch mean
                baseline[i] = (rewards.sum() - rewards[i]) / (len(rewards) - 1)
        torch.testing.assert_close(record["local_advantages"].double(), rewards - baseline, rtol=1e-5, atol=1e-5)
        for k, row, r in zip(keys, rows, rewards.tolist(), strict=True):
            windows[k] = (windows.get(k, row) + [r])[-args.basis_window :]
    return windows, revisited


@pytest.mark.slow
def test_rolling_values_start_from_the_reference_row_and_take_each_online_reward(tmp_path):
    """basis_values='rolling' (ALGORITHMS.md §1f): every step's advantages equal BASIS's on windows that started as
    the reference rows and took each earlier reward of the same prompt (never the current one)."""
    data = arithmetic_train(16)
    args = config(tmp_path, max_steps=3, basis_values="rolling", basis_window=4, scale_rewards="none")
    assert args.basis_fallback == "initial" and not args.basis_history
    trainer = recording(BASISTrainer)(tiny_model_path(), [prompt_reward], args=args, train_dataset=data)
    trainer.train()

    def start(record, i):
        return [float(v) for v in record["columns"][args.reference_rewards_column][i]][-4:]

    windows, revisited = _replay_windows(trainer, args, start)
    assert revisited >= 16  # later steps really used the updated windows
    assert trainer._estimator_state["rows"] == windows
    assert all(len(w) == 4 for w in windows.values())


@pytest.mark.slow
def test_online_values_need_no_offline_stage_and_fall_back_to_the_batch_mean(tmp_path):
    """basis_values='online': no reference column, no sampling before training; rows fill with the prompt's own
    rewards, and a prompt with fewer than basis_min_samples rewards gets the leave-one-out batch mean."""
    data = arithmetic_train(16, with_references=False)
    args = config(tmp_path, max_steps=4, basis_values="online", basis_window=3, scale_rewards="none")
    trainer = recording(BASISTrainer)(tiny_model_path(), [prompt_reward], args=args, train_dataset=data)
    trainer.train()
    assert "reference_rewards" not in trainer.train_dataset.column_names
    assert not (tmp_path / "cache").exists()  # nothing was sampled or cached
    windows, revisited = _replay_windows(trainer, args, lambda record, i: [])
    assert revisited >= 32
    assert trainer._estimator_state["rows"] == windows
    usable = [h["basis/usable_fraction"] for h in trainer.state.log_history if "basis/usable_fraction" in h]
    assert usable[0] == 0.0 and usable[-1] == 1.0  # step 1: no row has a value yet; step 3 on: every row has 2+


def test_basis_values_options_are_checked(tmp_path):
    with pytest.raises(
        ValueError, match="basis_values must be .reference., .history., .rolling. or .online.; got .fresh."
    ):
        config(tmp_path, basis_values="fresh")
    with pytest.raises(ValueError, match="basis_history=True means basis_values='history'"):
        config(tmp_path, basis_values="rolling", basis_history=True)
    with pytest.raises(ValueError, match="basis_min_samples must be in"):
        config(tmp_path, basis_values="online", basis_window=2, basis_min_samples=3)
    assert config(tmp_path, basis_history=True).basis_values == "history"
    assert config(tmp_path, basis_values="history").basis_history
    assert config(tmp_path, num_reference_samples=4, basis_values="rolling").basis_window == 4
    assert config(tmp_path).basis_fallback == "zero"
