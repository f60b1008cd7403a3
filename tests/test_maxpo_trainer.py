"""`trl_basis/trainers/maxpo_trainer.py`: real training steps on the shipped tiny model (CPU, offline)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, changed, prompt_reward, recording, snapshot, tiny_model_path

from trl_basis import MaxPOConfig, MaxPOTrainer
from trl_basis.advantages import max_at_k, maxpo_advantages, pkpo_advantages
from trl_basis.tasks import arithmetic_reward, make_arithmetic_dataset

B = 4  # completions per prompt


def config(tmp_path, **overrides) -> MaxPOConfig:
    kwargs = dict(
        CPU,
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,  # one optimizer step = one generation batch: 4 prompts x 4 completions
        num_generations=B,
        max_k=2,
        max_steps=2,
    )
    kwargs.update(overrides)
    return MaxPOConfig(**kwargs)


def noisy_reward(prompts, completions, answer, **kwargs):
    """A prompt part plus a part that depends on the sampled text, so groups hold distinct rewards."""
    base = prompt_reward(prompts, completions, answer)
    texts = [c[0]["content"] for c in completions]
    return [0.5 * b + 0.5 * (int(hashlib.sha256(t.encode()).hexdigest(), 16) % 5) / 4 for b, t in zip(base, texts)]


def hard_train():
    """Levels 3-6: the shipped model is unsure there, so the completions of a group differ."""
    return arithmetic_train(64, difficulties=(3, 4, 5, 6))


def run(tmp_path, reward=noisy_reward, **overrides):
    trainer = recording(MaxPOTrainer)(
        tiny_model_path(), [reward], args=config(tmp_path, **overrides), train_dataset=hard_train()
    )
    before = snapshot(trainer.model)
    trainer.train()
    return trainer, before


@pytest.mark.slow
def test_l2o_training_changes_parameters_and_loss_gets_l2o_advantages(tmp_path):
    trainer, before = run(tmp_path)
    assert changed(before, trainer.model)
    logged = [h for h in trainer.state.log_history if "maxpo/k" in h]
    assert len(trainer.records) == len(logged) == 2
    for step, record in enumerate(trainer.records):
        answers = record["local_answers"]
        assert all(len(set(answers[g * B : (g + 1) * B])) == 1 for g in range(4)), "groups are not contiguous"
        rewards = record["rewards_per_func"][:, 0].double().view(-1, B)
        expected = (maxpo_advantages(rewards, 2) * B).view(-1)
        got = record["local_advantages"].double()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        assert got.view(-1, B).sum(dim=1).abs().max() < 1e-5  # centred in every group
        received = torch.cat(trainer.loss_advantages[2 * step : 2 * step + 2]).double()
        torch.testing.assert_close(received.sort().values, got.sort().values)
        assert logged[step]["maxpo/max_at_k"] == pytest.approx(max_at_k(rewards, 2).mean().item())
        assert logged[step]["maxpo/pass_at_1"] == pytest.approx(rewards.mean().item())
        assert logged[step]["maxpo/advantage_sum"] == pytest.approx(0.0, abs=1e-9)
        assert logged[step]["maxpo/k"] == 2


@pytest.mark.slow
def test_k1_is_rloo(tmp_path):
    trainer, _ = run(tmp_path, max_k=1, max_steps=1)
    record = trainer.records[0]
    rewards = record["rewards_per_func"][:, 0].double().view(-1, B)
    rloo = rewards - (rewards.sum(dim=1, keepdim=True) - rewards) / (B - 1)
    torch.testing.assert_close(record["local_advantages"].double(), rloo.view(-1), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("estimator", "baseline"), [("pkpo", "none"), ("pkpo_loo", "loo"), ("pkpo_loo_minus_one", "loo_minus_one")]
)
@pytest.mark.slow
def test_pkpo_estimators_and_their_centring_residual(tmp_path, estimator, baseline):
    trainer, _ = run(tmp_path, advantage_estimator=estimator, max_steps=1)
    record = trainer.records[0]
    rewards = record["rewards_per_func"][:, 0].double().view(-1, B)
    expected = pkpo_advantages(rewards, 2, baseline=baseline) * B
    torch.testing.assert_close(record["local_advantages"].double(), expected.view(-1), rtol=1e-5, atol=1e-6)
    logged = next(h for h in trainer.state.log_history if "maxpo/advantage_sum" in h)
    assert logged["maxpo/advantage_sum"] == pytest.approx(expected.sum(dim=1).abs().mean().item(), rel=1e-4)


@pytest.mark.slow
def test_group_scaling_and_k_annealing(tmp_path):
    trainer, _ = run(tmp_path, max_k=3, max_k_final=1, max_steps=3, scale_rewards="group")
    ks = [h["maxpo/k"] for h in trainer.state.log_history if "maxpo/k" in h]
    assert ks == [round(3 - 2 * s / 3) for s in range(3)] == [3, 2, 2]
    for record, k in zip(trainer.records, ks):
        rewards = record["rewards_per_func"][:, 0].double().view(-1, B)
        adv = maxpo_advantages(rewards, int(k)) * B
        expected = adv / (adv.std(dim=1, keepdim=True) + 1e-4)
        torch.testing.assert_close(record["local_advantages"].double(), expected.view(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_lora_trains_only_the_adapter(tmp_path):
    from peft import LoraConfig

    trainer = MaxPOTrainer(
        tiny_model_path(),
        [noisy_reward],
        args=config(tmp_path, max_steps=1),
        train_dataset=hard_train(),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    )
    before = snapshot(trainer.model)
    trainer.train()
    moved = changed(before, trainer.model)
    assert moved and all("lora_" in name for name in moved), moved


@pytest.mark.slow
def test_unscorable_completions_get_zero_advantage_and_groups_stay_centred(tmp_path):
    def first_missing(prompts, completions, answer, **kwargs):
        rewards = noisy_reward(prompts, completions, answer)
        return [None if i % B == 0 else r for i, r in enumerate(rewards)]

    trainer, _ = run(tmp_path, reward=first_missing, max_steps=1)
    adv = trainer.records[0]["local_advantages"].double().view(-1, B)
    rewards = trainer.records[0]["rewards_per_func"][:, 0].double().view(-1, B)
    assert torch.all(adv[:, 0] == 0)
    torch.testing.assert_close(adv[:, 1:], maxpo_advantages(rewards[:, 1:], 2) * 3, rtol=1e-5, atol=1e-6)
    assert adv.sum(dim=1).abs().max() < 1e-5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(max_k=4), r"max_k=4 must satisfy 1 <= K < num_generations \(4\)"),
        (dict(max_k=0), r"max_k=0 must satisfy"),
        (dict(max_k_final=5), r"max_k_final=5 must satisfy"),
        (dict(advantage_estimator="ppo"), "advantage_estimator='ppo' is not a registered group estimator"),
        (dict(scale_rewards="global"), "scale_rewards must be"),
    ],
)
def test_bad_configs_error_clearly(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_normalize_then_sum_matches_trls_formula_written_out():
    from trl_basis.advantages.scaling import normalize_then_sum

    g = torch.Generator().manual_seed(0)
    rpf = torch.rand(12, 2, generator=g).double()  # 3 groups of 4, 2 reward functions
    rpf[5, 1] = float("nan")  # one function has no reward for one row
    rpf[7] = float("nan")  # no function scores this row
    weights = torch.tensor([1.0, 0.5])
    got = normalize_then_sum(rpf, weights, 4)
    for i in range(12):
        group = range(4 * (i // 4), 4 * (i // 4) + 4)
        if i == 7:
            assert torch.isnan(got[i])
            continue
        total = 0.0
        for f in range(2):
            values = [rpf[j, f].item() for j in group if rpf[j, f] == rpf[j, f]]
            if rpf[i, f] != rpf[i, f]:
                continue
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
            total += weights[f].item() * (rpf[i, f].item() - mean) / (std + 1e-4)
        assert got[i].item() == pytest.approx(total, abs=1e-9)


@pytest.mark.slow
def test_normalize_then_sum_takes_max_at_k_of_the_aggregated_normalised_reward(tmp_path):
    from trl_basis.advantages.scaling import normalize_then_sum

    trainer = recording(MaxPOTrainer)(
        tiny_model_path(),
        [noisy_reward, prompt_reward],
        args=config(
            tmp_path, multi_objective_aggregation="normalize_then_sum", reward_weights=[1.0, 2.0], max_steps=1
        ),
        train_dataset=hard_train(),
    )
    trainer.train()
    (record,) = trainer.records
    aggregated = normalize_then_sum(record["rewards_per_func"], torch.tensor([1.0, 2.0]), B).view(-1, B)
    expected = (maxpo_advantages(aggregated, 2) * B).view(-1)
    torch.testing.assert_close(record["local_advantages"].double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [0, 3])
def test_maxpo_refuses_a_dataset_smaller_than_one_generation_batch(tmp_path, rows):
    """It used to 'train' 0 steps and exit 0. The check runs before the model loads (a bogus model path proves it)."""
    data = make_arithmetic_dataset(num_train=max(rows, 1), num_test=2)["train"].select(range(rows))
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=32, num_generations=8)
    with pytest.raises(ValueError, match=r"fewer than one generation batch of 4 prompts.*0 steps"):
        MaxPOTrainer(str(tmp_path / "no-model"), arithmetic_reward, args=args, train_dataset=data)


def test_maxpo_without_a_prompt_column_is_refused_before_the_model_loads(tmp_path):
    from datasets import Dataset

    data = Dataset.from_dict({"question": ["1+2="] * 8, "answer": ["3"] * 8})
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=8)
    with pytest.raises(ValueError, match="train_dataset has no 'prompt' column"):
        MaxPOTrainer(str(tmp_path / "no-model"), arithmetic_reward, args=args, train_dataset=data)
