"""`trl_basis/trainers/basis_config.py`, `maxpo_config.py` and `_checks.py`: every bad option names itself and the fix."""

from __future__ import annotations

import warnings

import pytest
from _trainer_utils import CPU

from trl_basis import BASISConfig, MaxPOConfig


@pytest.mark.parametrize("value", ["", "null", "None", "NONE", " none ", None])
def test_empty_or_null_reference_cache_dir_disables_the_cache(tmp_path, value):
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, reference_cache_dir=value)
    assert args.reference_cache_dir is None


def test_a_real_reference_cache_dir_is_kept(tmp_path):
    args = BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, reference_cache_dir="null-x")
    assert args.reference_cache_dir == "null-x"


@pytest.mark.parametrize(("config_cls", "default"), [(BASISConfig, "batch"), (MaxPOConfig, "none")])
def test_scale_rewards_is_trls_option_with_our_defaults(tmp_path, config_cls, default):
    kwargs = dict(CPU, output_dir=str(tmp_path), per_device_train_batch_size=64)  # 64: no small-batch warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert config_cls(**kwargs).scale_rewards == default  # and no warning
    assert config_cls(**kwargs, scale_rewards=False).scale_rewards == "none"  # TRL's boolean spelling
    with pytest.raises(ValueError, match="scale_rewards must be"):
        config_cls(**kwargs, scale_rewards="global")


def test_basis_refuses_group_scaling_at_one_completion(tmp_path):
    with pytest.raises(ValueError, match="scale_rewards must be 'batch' or 'none' at one completion per prompt"):
        BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=64, scale_rewards="group")


@pytest.mark.parametrize("k", [2.5, "4", True])
def test_non_integer_max_k_names_the_option(tmp_path, k):
    with pytest.raises(ValueError, match="max_k must be a whole number"):
        MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=8, max_k=k)


@pytest.mark.parametrize(
    ("per_device", "steps", "warns"), [(8, 1, True), (32, 1, True), (32, 2, False), (64, 1, False)]
)
def test_basis_warns_when_the_global_generation_batch_is_small(tmp_path, per_device, steps, warns):
    """TRL's default batch (8 prompts) pools BASIS's baseline over too few prompts: one warning, with the fix."""
    kwargs = dict(CPU, output_dir=str(tmp_path), per_device_train_batch_size=per_device, steps_per_generation=steps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = BASISConfig(**kwargs)
    small = [w for w in caught if "pools its baseline" in str(w.message)]
    assert len(small) == int(warns), [str(w.message) for w in caught]
    if warns:
        text = str(small[0].message)
        assert f"here {per_device * steps} prompts" in text and "per_device_train_batch_size" in text and "64" in text
    assert args.generation_batch_size == per_device * steps


def test_maxpo_never_gets_the_basis_batch_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        MaxPOConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=8)


def test_basis_exact_at_a_large_batch_warns_of_its_cost(tmp_path):
    with pytest.warns(UserWarning, match=r"basis_exact=True costs O\(G·B²\)"):
        BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=1024, basis_exact=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"basis_history_discount": 0.0}, r"basis_history_discount must be in \(0, 1\]"),
        ({"basis_history_discount": 1.5}, r"basis_history_discount must be in \(0, 1\]"),
        ({"basis_history_weight": -1.0}, "basis_history_weight must be > 0"),
    ],
)
def test_bad_history_options_name_the_option(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        BASISConfig(**CPU, output_dir=str(tmp_path), per_device_train_batch_size=8, basis_history=True, **overrides)
