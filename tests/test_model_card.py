"""`trl_basis/model_card.py`: every folder `save_model` writes carries a card naming the method, its paper and BibTeX,
the base model, the dataset and (from `trl-basis train`) the held-out results."""

from __future__ import annotations

import pytest
from _trainer_utils import CPU, arithmetic_train, prompt_reward, tiny_model_path

from trl_basis import BASISConfig, BASISTrainer, MaxPOConfig, MaxPOTrainer
from trl_basis.model_card import held_out_results, write_model_card


def _basis(tmp_path, **kwargs):
    args = BASISConfig(**CPU, output_dir=str(tmp_path / "run"), per_device_train_batch_size=64, max_steps=1)
    return BASISTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(64), **kwargs)


def test_save_model_writes_the_basis_card(tmp_path):
    trainer = _basis(tmp_path)
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "trained with **BASIS**" in card and "arxiv.org/abs/2605.27293" in card
    assert "Batchwise Advantage Estimation from Single-Rollout Information Sharing" in card
    assert "@article{gong2026basis" in card and "@software{vonwerra2020trl" in card
    assert f"`{tiny_model_path()}`" in card  # a local base model is named, not linked as huggingface.co/None
    assert "huggingface.co/None" not in card and "base_model:" not in card  # no Hub metadata for a local path
    assert "No held-out evaluation was recorded" in card and "not named" in card
    assert "tags:" in card and "- basis" in card


def test_the_card_names_a_hub_dataset_and_shows_pass_at_k_of_the_trainer(tmp_path):
    args = MaxPOConfig(**CPU, output_dir=str(tmp_path / "run"), per_device_train_batch_size=16, num_generations=8)
    trainer = MaxPOTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(16))
    metrics = {
        "before": {"step": 0, "accuracy": 0.383, "pass_at_k": {"1": 0.383, "4": 0.745, "8": 0.875}},
        "after": {"step": 300, "accuracy": 0.445, "pass_at_k": {"1": 0.445, "4": 0.801, "8": 0.89}},
        "num_eval_prompts": 200,
        "eval_samples": 8,
    }
    trainer.model_card_dataset = "openai/gsm8k"
    trainer.model_card_results = held_out_results(metrics, k=4)
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "trained with **MaxPO**" in card and "@article{takashiro2026maxpo" in card and "2606.06080" in card
    assert "[openai/gsm8k](https://huggingface.co/datasets/openai/gsm8k)" in card and "- openai/gsm8k" in card
    assert "| pass@1 | 0.383 | 0.445 | +0.062 |" in card and "| pass@4 | 0.745 | 0.801 | +0.056 |" in card
    assert "200 prompts never trained on, 8 sampled completions" in card and "after step 300" in card
    assert "K of the max@K objective: 4" in card


def test_an_interrupted_run_shows_no_results():
    point = {"step": 0, "accuracy": 0.5, "pass_at_k": {"1": 0.5}}
    assert held_out_results({"before": point, "after": point, "interrupted": True}, k=None) is None


@pytest.mark.slow
def test_a_lora_save_gets_this_card_not_peft_s_generic_one(tmp_path):
    from peft import LoraConfig

    trainer = _basis(tmp_path, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    card = (tmp_path / "adapter" / "README.md").read_text()
    assert "trained with **BASIS**" in card and f"`{tiny_model_path()}`" in card
    assert "[More Information Needed]" not in card  # PEFT's template


def test_checkpoints_and_push_to_hub_use_the_same_card(tmp_path):
    trainer = _basis(tmp_path)
    trainer.create_model_card(dataset_name="openai/gsm8k")  # what _save_checkpoint and push_to_hub call
    card = (tmp_path / "run" / "README.md").read_text()
    assert "trained with **BASIS**" in card and "openai/gsm8k" in card


def test_write_model_card_works_for_trl_s_own_grpo_trainer(tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(**CPU, output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, num_generations=8)
    trainer = GRPOTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(16))
    path = write_model_card(trainer, str(tmp_path / "out"), dataset_name="the built-in arithmetic task")
    card = open(path).read()
    assert "trained with **GRPO**" in card and "on the built-in arithmetic task" in card


def test_a_peer_estimator_run_is_not_labelled_with_the_paper(tmp_path):
    """REINFORCE++ in BASISTrainer is not BASIS: the card names the estimator and cites no paper."""
    args = BASISConfig(
        **CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, advantage_estimator="reinforce_pp"
    )
    trainer = BASISTrainer(tiny_model_path(), prompt_reward, args=args, train_dataset=arithmetic_train(16))
    trainer.save_model(str(tmp_path))
    card = (tmp_path / "README.md").read_text()
    assert "the `reinforce_pp` advantage estimator (in BASISTrainer)" in card
    assert "2605.27293" not in card and "@article" not in card
