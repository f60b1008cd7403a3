"""The one estimator registry: every estimator trains by name, and a user's own, registered at run time, too.

Real training steps on the shipped tiny model (CPU). The advantages the loss receives are compared with the
estimator's formula evaluated on what TRL gathered; the estimators' state with a plain-Python replay.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _trainer_utils import CPU, arithmetic_train, changed, prompt_reward, recording, snapshot, tiny_model_path

from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer
from trl_basis.advantages import ESTIMATORS, EstimatorBatch, estimator_names, register_estimator, spo_tracker_update


def basis_config(tmp_path, **overrides) -> BASISConfig:
    kwargs = dict(
        CPU,
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,  # one generation batch of 16 prompts per optimizer step
        max_steps=2,
        reference_cache_dir=str(tmp_path / "cache"),
    )
    kwargs.update(overrides)
    return BASISConfig(**kwargs)


@pytest.fixture
def user_estimator():
    """A leave-one-out mean baseline, registered by the test as a user would (and removed afterwards)."""

    @register_estimator("test_loo_mean", group=False, description="r_i minus the mean of the other rewards")
    def loo_mean(rewards, batch, state, args):
        others = (rewards.nansum() - rewards) / (rewards.numel() - 1)
        state["calls"] = state.get("calls", 0) + 1
        return rewards - others, {"test/others_mean": others.mean().item()}

    yield "test_loo_mean"
    del ESTIMATORS["test_loo_mean"]


def test_the_registry_lists_every_estimator():
    assert estimator_names(group=False) == ("basis", "reinforce_pp", "spo")
    assert estimator_names(group=True) == ("l2o", "pkpo", "pkpo_loo", "pkpo_loo_minus_one", "grpo", "rloo")
    for name, estimator in ESTIMATORS.items():  # each states its formula and its section of ALGORITHMS.md
        assert "ALGORITHMS.md" in (estimator.fn.__doc__ or ""), name


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("basis", {}),
        ("basis", {"basis_values": "history"}),
        ("basis", {"basis_values": "rolling"}),
        ("basis", {"basis_values": "online"}),
        ("reinforce_pp", {}),
        ("spo", {}),
        *[(name, {}) for name in ("l2o", "pkpo", "pkpo_loo", "pkpo_loo_minus_one", "grpo", "rloo")],
    ],
)
def test_every_estimator_state_is_checkpointable_json(tmp_path, name, options):
    """Two steps of each built-in estimator on a synthetic batch: finite advantages, and a state that survives the
    JSON round trip every checkpoint makes (the trainer writes it next to the weights)."""
    g = torch.Generator().manual_seed(0)
    if ESTIMATORS[name].group:
        args = MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=16, advantage_estimator=name)
        size = args.num_generations
    else:
        args = basis_config(tmp_path, per_device_train_batch_size=64, advantage_estimator=name, **options)
        size = 1
    prompts = [f"p{i // size}" for i in range(64)]
    columns = {"prompt": prompts, "reference_rewards": [[0.0, 1.0, float(i % 3 == 0)] for i in range(64)]}
    state: dict = {}
    for step in range(2):
        rewards = (torch.rand(64, generator=g) < 0.5).float()
        batch = EstimatorBatch(rewards.view(-1, 1), columns, group_size=size, step=step, max_steps=2)
        advantages, metrics = ESTIMATORS[name].fn(rewards, batch, state, args)
        assert advantages.shape == (64,) and bool(torch.isfinite(advantages).all()), name
        assert all(math.isfinite(v) for v in metrics.values())
    assert json.loads(json.dumps(state)) == state


def test_a_user_estimator_registered_at_run_time_trains(tmp_path, user_estimator):
    args = basis_config(tmp_path, advantage_estimator=user_estimator, scale_rewards="none")
    # No reference column and no offline stage: the estimator reads no column.
    train = arithmetic_train(64, with_references=False)
    trainer = recording(BASISTrainer)(tiny_model_path(), [prompt_reward], args=args, train_dataset=train)
    before = snapshot(trainer.model)
    trainer.train()
    assert changed(before, trainer.model)
    assert "reference_rewards" not in trainer.train_dataset.column_names
    assert trainer._estimator_state["calls"] == 2
    logged = [h["test/others_mean"] for h in trainer.state.log_history if "test/others_mean" in h]
    for record, others_mean in zip(trainer.records, logged, strict=True):
        rewards = record["rewards_per_func"].double().sum(dim=1)
        others = (rewards.sum() - rewards) / 15
        torch.testing.assert_close(record["local_advantages"].double(), rewards - others, rtol=1e-5, atol=1e-5)
        assert others_mean == pytest.approx(others.mean().item())


def test_the_config_checks_the_registry_as_it_is_now(tmp_path):
    with pytest.raises(ValueError, match="advantage_estimator='later' is not a registered one-completion estimator"):
        basis_config(tmp_path, advantage_estimator="later")
    with pytest.raises(ValueError, match="'l2o' is not a registered one-completion estimator .*use MaxPOConfig"):
        basis_config(tmp_path, advantage_estimator="l2o")

    @register_estimator("later", group=False)
    def later(rewards, batch, state, args):
        """A late registration."""
        return rewards - rewards.nanmean(), {}

    try:
        assert basis_config(tmp_path, advantage_estimator="later").advantage_estimator == "later"
    finally:
        del ESTIMATORS["later"]


@pytest.mark.slow
def test_reinforce_pp_needs_no_offline_stage_and_normalises_over_the_batch(tmp_path):
    args = basis_config(tmp_path, advantage_estimator="reinforce_pp")
    train = arithmetic_train(64, with_references=False)
    trainer = recording(BASISTrainer)(tiny_model_path(), [prompt_reward], args=args, train_dataset=train)
    trainer.train()
    assert "reference_rewards" not in trainer.train_dataset.column_names
    for record in trainer.records:
        rewards = record["rewards_per_func"].double().sum(dim=1)
        expected = (rewards - rewards.mean()) / rewards.std()
        torch.testing.assert_close(record["local_advantages"].double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_spo_tracks_each_prompt_from_its_reference_rewards(tmp_path):
    args = basis_config(tmp_path, advantage_estimator="spo", max_steps=3, spo_discount=0.5)
    trainer = recording(BASISTrainer)(
        tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64)
    )
    trainer.train()
    trackers: dict[str, list[float]] = {}  # plain-Python replay of SPO's tracker
    for record in trainer.records:
        rewards = record["rewards_per_func"].double().sum(dim=1).tolist()
        prompts = [str(p) for p in record["columns"]["prompt"]]
        refs = record["columns"]["reference_rewards"]
        start = [[sum(r), len(r) - sum(r)] for r in refs]  # n0 = N observations at the reference mean
        counts = [trackers.get(p, s) for p, s in zip(prompts, start, strict=True)]
        centred = [r - c[0] / (c[0] + c[1]) for r, c in zip(rewards, counts, strict=True)]
        mean = sum(centred) / len(centred)
        std = (sum((a - mean) ** 2 for a in centred) / (len(centred) - 1)) ** 0.5
        expected = torch.tensor([(a - mean) / std for a in centred], dtype=torch.float64)
        torch.testing.assert_close(record["local_advantages"].double(), expected, rtol=1e-5, atol=1e-5)
        for p, c, r in zip(prompts, counts, rewards, strict=True):
            trackers[p] = list(spo_tracker_update(*trackers.get(p, c), r, 0.5))
    saved = trainer._estimator_state["spo"]
    assert len(saved) == len(trackers)
    torch.testing.assert_close(torch.tensor(sorted(saved.values())), torch.tensor(sorted(trackers.values())))


@pytest.mark.slow
def test_rloo_by_name_in_maxpo_trainer(tmp_path):
    args = MaxPOConfig(
        **CPU,
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        num_generations=4,
        max_k=3,
        max_steps=1,
        advantage_estimator="rloo",
    )
    trainer = recording(MaxPOTrainer)(
        tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(16)
    )
    trainer.train()
    rewards = trainer.records[0]["rewards_per_func"].double().sum(dim=1).view(-1, 4)
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / 3
    torch.testing.assert_close(trainer.records[0]["local_advantages"].double(), (rewards - others).view(-1))
    assert [h["maxpo/k"] for h in trainer.state.log_history if "maxpo/k" in h] == [1]


def test_a_group_with_unscorable_completions_is_estimated_on_its_scored_ones():
    """The scored completions form the group, at its own size: [None, 1, 0, 0] gets RLOO's r_i − mean(others) over
    the three scored ones, exactly as a group of three would (times 3, not the nominal 4)."""
    from types import SimpleNamespace

    rewards = torch.tensor([float("nan"), 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    args = SimpleNamespace(max_k=2, max_k_final=None, scale_rewards="none")
    batch = EstimatorBatch(rewards.view(-1, 1), group_size=4)
    advantages, _ = ESTIMATORS["rloo"].fn(rewards, batch, {}, args)
    torch.testing.assert_close(advantages[1:4], torch.tensor([1.0, -0.5, -0.5], dtype=torch.float64))
    assert torch.isnan(advantages[0])
    l2o, _ = ESTIMATORS["l2o"].fn(rewards, batch, {}, args)
    from trl_basis.advantages import maxpo_advantages

    torch.testing.assert_close(l2o[1:4], 3 * maxpo_advantages(rewards[1:4].view(1, 3), 2)[0])


def test_estimators_that_ignore_k_accept_any_group_size(tmp_path):
    for name in ("rloo", "grpo"):  # max_k keeps its default (4) and is not read
        args = MaxPOConfig(
            **CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=4, advantage_estimator=name
        )
        assert args.advantage_estimator == name
    with pytest.raises(ValueError, match="max_k=4 must satisfy"):
        MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=4)


def test_peers_scale_rewards_none_keeps_the_raw_advantage(tmp_path):
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0] * 16)
    columns = {"prompt": [f"p{i}" for i in range(64)], "reference_rewards": [[0.0, 1.0]] * 64}
    batch = EstimatorBatch(rewards.view(-1, 1), columns)
    raw = basis_config(tmp_path, per_device_train_batch_size=64, scale_rewards="none")
    rpp, _ = ESTIMATORS["reinforce_pp"].fn(rewards, batch, {}, raw)
    torch.testing.assert_close(rpp, rewards.double() - 0.75)
    spo, _ = ESTIMATORS["spo"].fn(rewards, batch, {}, raw)
    torch.testing.assert_close(spo, rewards.double() - 0.5)  # the tracker's value starts at the reference mean


@pytest.mark.slow
def test_a_stateless_estimator_still_writes_its_settings_and_an_old_checkpoint_resumes(tmp_path):
    """reinforce_pp keeps no state, yet every checkpoint records the estimator's settings (a resume with another
    estimator is refused); a checkpoint written before the renames ("beta", basis_beta_*) resumes under the new
    names."""
    from trl_basis.trainers._trl_bridge import ESTIMATOR_STATE_FILE

    def build(name, **extra):
        args = basis_config(
            tmp_path, save_strategy="steps", save_steps=1, max_steps=2, advantage_estimator=name, **extra
        )
        return BASISTrainer(tiny_model_path(), [prompt_reward], args=args, train_dataset=arithmetic_train(64))

    build("reinforce_pp").train()
    state_file = tmp_path / "out" / "checkpoint-1" / ESTIMATOR_STATE_FILE
    assert json.loads(state_file.read_text())["config"]["advantage_estimator"] == "reinforce_pp"
    with pytest.raises(ValueError, match="advantage_estimator='reinforce_pp' in the checkpoint but 'basis' now"):
        build("basis").train(resume_from_checkpoint=str(state_file.parent))
    saved = json.loads(state_file.read_text())
    saved["beta"] = [0.5]  # as 0.1 wrote it
    saved["config"] = {"advantage_estimator": "basis", "basis_beta_num": 230, "basis_beta_min": 0.01}
    state_file.write_text(json.dumps(saved))
    resumed = build("basis")
    resumed.train(resume_from_checkpoint=str(state_file.parent))
    assert resumed._estimator_state["temperature"][0] == 0.5 and "beta" not in resumed._estimator_state
