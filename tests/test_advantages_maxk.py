"""Max@K estimators (MaxPO L2O, PKPO variants) against brute force and the exact bandit gradient."""

import itertools
import math
from fractions import Fraction

import pytest
import torch

from trl_basis.advantages import max_at_k, maxpo_advantages, pkpo_advantages

# ---------------------------------------------------------------------------------------------------------
# Independent brute force: enumerate every K-subset with itertools.combinations.
# ---------------------------------------------------------------------------------------------------------


def bf_rho(rewards, k):
    subsets = list(itertools.combinations(range(len(rewards)), k))
    return sum(max(rewards[j] for j in s) for s in subsets) / len(subsets)


def bf_q(rewards, k, i):
    subsets = [s for s in itertools.combinations(range(len(rewards)), k) if i in s]
    return sum(max(rewards[j] for j in s) for s in subsets) / len(subsets)


def bf_rho_without(rewards, k, i):
    if k == 0:
        return 0.0
    return bf_rho(rewards[:i] + rewards[i + 1 :], k)


def bf_advantages(rewards, k, kind):
    size = len(rewards)
    out = []
    for i in range(size):
        q = bf_q(rewards, k, i)
        if kind == "l2o":
            out.append(k / size * (q - bf_rho_without(rewards, k, i)))
        elif kind == "none":
            out.append(k / size * q)
        elif kind == "loo":
            out.append(k / size * q - k / (size - 1) * bf_rho_without(rewards, k, i))
        elif kind == "loo_minus_one":
            out.append(k / size * q - k / size * bf_rho_without(rewards, k - 1, i))
    return out


def reward_groups(size, seed):
    """Random, binary, and heavily tied groups of one size (4 groups each)."""
    gen = torch.Generator().manual_seed(seed)
    random = torch.rand(4, size, generator=gen, dtype=torch.float64)
    binary = (torch.rand(4, size, generator=gen) < 0.5).to(torch.float64)
    binary[0] = 0.0  # all wrong
    binary[1] = 1.0  # all right
    tied = torch.randint(0, 3, (4, size), generator=gen).to(torch.float64) / 2
    return torch.cat([random, binary, tied])


SIZES = [2, 3, 5, 8, 10]


@pytest.mark.parametrize("size", SIZES)
def test_max_at_k_matches_enumeration(size):
    rewards = reward_groups(size, seed=size)
    for k in range(1, size + 1):
        got = max_at_k(rewards, k)
        want = torch.tensor([bf_rho(row, k) for row in rewards.tolist()], dtype=torch.float64)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("size", SIZES)
def test_maxpo_matches_enumeration(size):
    rewards = reward_groups(size, seed=100 + size)
    for k in range(1, size):
        got = maxpo_advantages(rewards, k)
        want = torch.tensor([bf_advantages(row, k, "l2o") for row in rewards.tolist()], dtype=torch.float64)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
        # The other form of the same estimator: K/(B-K) (q_i - rho_K).
        q = torch.tensor([[bf_q(row, k, i) for i in range(size)] for row in rewards.tolist()], dtype=torch.float64)
        rho = torch.tensor([bf_rho(row, k) for row in rewards.tolist()], dtype=torch.float64)
        torch.testing.assert_close(got, k / (size - k) * (q - rho[:, None]), rtol=0, atol=1e-13)


@pytest.mark.parametrize("baseline", ["none", "loo", "loo_minus_one"])
@pytest.mark.parametrize("size", SIZES)
def test_pkpo_matches_enumeration(size, baseline):
    rewards = reward_groups(size, seed=200 + size)
    top = size - 1 if baseline == "loo" else size
    for k in range(1, top + 1):
        got = pkpo_advantages(rewards, k, baseline=baseline)
        want = torch.tensor([bf_advantages(row, k, baseline) for row in rewards.tolist()], dtype=torch.float64)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


def test_large_group_matches_exact_rational_arithmetic():
    """B = 256: the lgamma binomials agree with exact integer binomials (Fractions) to 1e-12."""
    gen = torch.Generator().manual_seed(7)
    size, k = 256, 100
    row = (torch.randint(0, 9, (size,), generator=gen).to(torch.float64) / 8).tolist()  # ties, exact in binary
    s = sorted(row)
    norm = math.comb(size, k)
    rho = sum(Fraction(s[m - 1]) * math.comb(m - 1, k - 1) for m in range(1, size + 1)) / norm
    norm_q = math.comb(size - 1, k - 1)
    q_sorted = []
    for t in range(1, size + 1):
        above = sum(Fraction(s[m - 1]) * math.comb(m - 2, k - 2) for m in range(t + 1, size + 1))
        q_sorted.append((Fraction(s[t - 1]) * math.comb(t - 1, k - 1) + above) / norm_q)
    rewards = torch.tensor([row], dtype=torch.float64)
    assert abs(max_at_k(rewards, k).item() - float(rho)) < 1e-12
    got = maxpo_advantages(rewards, k)[0]
    # Stable sort: the t-th smallest entry of `row` is at position order[t].
    order = sorted(range(size), key=lambda i: row[i])
    want = torch.empty(size, dtype=torch.float64)
    for t, i in enumerate(order):
        want[i] = float(Fraction(k, size - k) * (q_sorted[t] - rho))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [2, 5, 16, 256])
def test_l2o_is_exactly_centred(size):
    gen = torch.Generator().manual_seed(size)
    rewards = torch.cat(
        [
            torch.rand(16, size, generator=gen, dtype=torch.float64),
            (torch.rand(16, size, generator=gen) < 0.3).to(torch.float64),
            torch.randint(0, 4, (16, size), generator=gen).to(torch.float64) / 3,
        ]
    )
    for k in sorted(k for k in {1, 2, size // 2, size - 1} if 1 <= k < size):
        adv = maxpo_advantages(rewards, k)
        assert adv.abs().max() > 0
        assert adv.sum(dim=1).abs().max().item() < 1e-12


def test_k1_trainer_scale_is_rloo():
    gen = torch.Generator().manual_seed(3)
    rewards = torch.rand(16, 7, generator=gen, dtype=torch.float64)
    size = rewards.shape[1]
    rloo = rewards - (rewards.sum(dim=1, keepdim=True) - rewards) / (size - 1)
    torch.testing.assert_close(size * maxpo_advantages(rewards, 1), rloo, rtol=0, atol=1e-14)


@pytest.mark.parametrize("fn", ["l2o", "none", "loo", "loo_minus_one"])
def test_ties_get_bitwise_equal_advantages(fn):
    gen = torch.Generator().manual_seed(11)
    size = 64
    rewards = torch.randint(0, 5, (32, size), generator=gen).to(torch.float64) / 4
    rewards[0] = 1.0
    rewards[1, :] = 0.0
    rewards[1, 7] = 1.0
    for k in (1, 3, 17, 63):
        adv = maxpo_advantages(rewards, k) if fn == "l2o" else pkpo_advantages(rewards, k, baseline=fn)
        for g in range(rewards.shape[0]):
            for level in rewards[g].unique():
                tied = adv[g][rewards[g] == level]
                assert torch.equal(tied, tied[:1].expand_as(tied)), (fn, k, g, level)
    # Distinct rewards (so the check above is not vacuous): the K - 1 lowest samples are never the max of a
    # K-subset that they share with a higher one, so they get one advantage; above them it strictly increases.
    distinct = torch.randperm(10, generator=gen).to(torch.float64)[None] / 9
    order = distinct[0].argsort()
    for k in (2, 3, 6):
        adv = maxpo_advantages(distinct, k)[0][order] if fn == "l2o" else pkpo_advantages(distinct, k, fn)[0][order]
        torch.testing.assert_close(adv[: k - 1], adv[:1].expand(k - 1), rtol=0, atol=1e-15)
        assert (adv[k - 1 :].diff() > 1e-6).all(), (fn, k)


def test_rewards_are_unsorted_and_aligned():
    """Advantages follow the samples, not the sorted order (a permuted group permutes the advantages)."""
    gen = torch.Generator().manual_seed(5)
    rewards = torch.rand(1, 9, generator=gen, dtype=torch.float64)
    perm = torch.randperm(9, generator=gen)
    for k in (2, 5):
        torch.testing.assert_close(maxpo_advantages(rewards[:, perm], k), maxpo_advantages(rewards, k)[:, perm])
        torch.testing.assert_close(
            pkpo_advantages(rewards[:, perm], k, "loo"), pkpo_advantages(rewards, k, "loo")[:, perm]
        )


def test_dtype_and_empty_batch():
    rewards = torch.tensor([[0.0, 1.0, 0.5, 0.25]], dtype=torch.float32)
    assert maxpo_advantages(rewards, 2).dtype == torch.float64
    assert max_at_k(rewards, 2).dtype == torch.float64
    assert pkpo_advantages(rewards, 2, "loo_minus_one").dtype == torch.float64
    assert maxpo_advantages(torch.zeros(0, 5), 2).shape == (0, 5)
    assert max_at_k(torch.zeros(0, 5), 2).shape == (0,)


# ---------------------------------------------------------------------------------------------------------
# Unbiasedness by exact enumeration on a softmax bandit.
# ---------------------------------------------------------------------------------------------------------


def exact_objective_gradient(logits, arm_rewards, k):
    """grad_theta J_K with J_K = E[max of K iid draws], via the CDF: P(max <= u) = F(u)^K."""
    theta = logits.clone().requires_grad_(True)
    probs = torch.softmax(theta, dim=0)
    levels = sorted(set(arm_rewards.tolist()))
    objective = torch.zeros((), dtype=torch.float64)
    previous = torch.zeros((), dtype=torch.float64)
    for level in levels:
        cdf = probs[arm_rewards <= level].sum()
        objective = objective + level * (cdf**k - previous**k)
        previous = cdf
    (grad,) = torch.autograd.grad(objective, theta)
    return grad


def enumerate_tuples(logits, size):
    """Every arm tuple of B draws (arms^B, B) and its probability."""
    probs = torch.softmax(logits, dim=0)
    tuples = torch.cartesian_prod(*[torch.arange(logits.numel())] * size)
    return tuples, probs[tuples].prod(dim=1)


def expected_estimator_gradient(logits, arm_rewards, tuples, tuple_probs, advantages_fn):
    """E[sum_i A_i grad log pi(y_i)] = sum over tuples of P(tuple) sum_i A_i (onehot(y_i) - pi)."""
    probs = torch.softmax(logits, dim=0)
    adv = advantages_fn(arm_rewards[tuples])  # (arms^B, B)
    per_tuple = torch.zeros(len(tuples), logits.numel(), dtype=torch.float64).scatter_add_(1, tuples, adv)
    per_tuple -= adv.sum(dim=1, keepdim=True) * probs
    return tuple_probs @ per_tuple


BANDITS = {
    "ties": torch.tensor([0.0, 0.3, 0.3, 1.0, 0.7], dtype=torch.float64),
    "binary": torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64),
    "distinct": torch.tensor([0.1, 0.9, 0.4, 0.65], dtype=torch.float64),
}


@pytest.mark.parametrize("bandit", list(BANDITS))
@pytest.mark.parametrize("size", [3, 4, 5])
def test_unbiased_against_exact_bandit_gradient(bandit, size):
    arm_rewards = BANDITS[bandit]
    logits = torch.linspace(-0.8, 0.9, arm_rewards.numel(), dtype=torch.float64) * torch.tensor(
        [1.0, -1.3, 0.7, 1.1, -0.4][: arm_rewards.numel()], dtype=torch.float64
    )
    estimators = {"l2o": (lambda r, k: maxpo_advantages(r, k), size - 1)}
    for baseline in ("none", "loo", "loo_minus_one"):
        top = size - 1 if baseline == "loo" else size
        estimators[baseline] = (lambda r, k, b=baseline: pkpo_advantages(r, k, baseline=b), top)
    tuples, tuple_probs = enumerate_tuples(logits, size)
    assert tuple_probs.sum().item() == pytest.approx(1.0, abs=1e-14)
    for name, (fn, top) in estimators.items():
        for k in range(1, top + 1):
            want = exact_objective_gradient(logits, arm_rewards, k)
            got = expected_estimator_gradient(logits, arm_rewards, tuples, tuple_probs, lambda r, fn=fn, k=k: fn(r, k))
            assert want.abs().max() > 1e-3  # a gradient that could be told apart from zero
            torch.testing.assert_close(got, want, rtol=0, atol=1e-10, msg=f"{name} K={k}")


def test_only_l2o_is_centred():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # B = 4, K = 2: rho_2 = 1/2, rho_1 = 1/4
    k = 2
    assert abs(maxpo_advantages(rewards, k).sum().item()) < 1e-15
    # sum_i s_i = K rho_K; sum_i rho_J(-i) = B rho_J, hence the PKPO sums below.
    assert pkpo_advantages(rewards, k, "none").sum().item() == pytest.approx(1.0, abs=1e-14)
    assert pkpo_advantages(rewards, k, "loo").sum().item() == pytest.approx(-1.0 / 3.0, abs=1e-14)
    assert pkpo_advantages(rewards, k, "loo_minus_one").sum().item() == pytest.approx(0.5, abs=1e-14)


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------

GROUP = torch.rand(3, 4)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: max_at_k(GROUP, 0), r"`k`.*1 <= k <= B"),
        (lambda: max_at_k(GROUP, 5), r"`k`.*1 <= k <= B"),
        (lambda: maxpo_advantages(GROUP, 0), r"`k`.*1 <= k <= B - 1"),
        (lambda: maxpo_advantages(GROUP, 4), r"`k`.*1 <= k <= B - 1"),
        (lambda: pkpo_advantages(GROUP, 4, "loo"), r"`k`.*1 <= k <= B - 1"),
        (lambda: pkpo_advantages(GROUP, 5, "none"), r"`k`.*1 <= k <= B"),
        (lambda: pkpo_advantages(GROUP, 5, "loo_minus_one"), r"`k`.*1 <= k <= B"),
        (lambda: pkpo_advantages(GROUP, 0, "loo_minus_one"), r"`k`.*1 <= k <= B"),
        (lambda: maxpo_advantages(GROUP, 2.0), r"`k` must be an integer"),
        (lambda: maxpo_advantages(GROUP, True), r"`k` must be an integer"),
        (lambda: max_at_k(torch.rand(4), 2), r"`rewards` must be 2-D"),
        (lambda: maxpo_advantages(torch.rand(2, 3, 4), 2), r"`rewards` must be 2-D"),
        (lambda: pkpo_advantages(torch.rand(4), 2), r"`rewards` must be 2-D"),
        (lambda: maxpo_advantages(torch.tensor([[0.0, float("nan"), 1.0]]), 1), r"`rewards` must be finite"),
        (lambda: pkpo_advantages(GROUP, 2, "mean"), r"unknown `baseline` 'mean'"),
    ],
)
def test_bad_input_raises(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    rewards = reward_groups(16, seed=13)
    for k in (1, 5, 15):
        torch.testing.assert_close(maxpo_advantages(rewards.cuda(), k).cpu(), maxpo_advantages(rewards, k))
        torch.testing.assert_close(max_at_k(rewards.cuda(), k).cpu(), max_at_k(rewards, k))
        for baseline in ("none", "loo", "loo_minus_one"):
            torch.testing.assert_close(
                pkpo_advantages(rewards.cuda(), k, baseline).cpu(), pkpo_advantages(rewards, k, baseline)
            )


def test_the_registry_holds_one_function_per_formula():
    """Each registered group estimator equals its formula times B on complete groups: L2O, PKPO's three baselines,
    `grpo` = r − mean, `rloo` = r − mean(others) (L2O at K = 1, whatever max_k is)."""
    from types import SimpleNamespace

    from trl_basis.advantages import ESTIMATORS, EstimatorBatch, get_estimator, maxpo_advantages, pkpo_advantages

    g = torch.Generator().manual_seed(3)
    rewards = (torch.rand(5, 8, generator=g) < 0.4).double()
    args = SimpleNamespace(max_k=3, max_k_final=None, scale_rewards="none")
    batch = EstimatorBatch(rewards_per_func=rewards.reshape(-1, 1), group_size=8)

    def run(name):
        advantages, metrics = get_estimator(name, group=True).fn(rewards.reshape(-1), batch, {}, args)
        return advantages.view(5, 8), metrics

    assert [n for n, e in ESTIMATORS.items() if e.group] == [
        "l2o",
        "pkpo",
        "pkpo_loo",
        "pkpo_loo_minus_one",
        "grpo",
        "rloo",
    ]
    torch.testing.assert_close(run("l2o")[0], 8 * maxpo_advantages(rewards, 3))
    for name, baseline in (("pkpo", "none"), ("pkpo_loo", "loo"), ("pkpo_loo_minus_one", "loo_minus_one")):
        torch.testing.assert_close(run(name)[0], 8 * pkpo_advantages(rewards, 3, baseline=baseline))
    torch.testing.assert_close(run("grpo")[0], rewards - rewards.mean(dim=1, keepdim=True))
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / 7
    advantages, metrics = run("rloo")
    torch.testing.assert_close(advantages, rewards - others)
    assert metrics["maxpo/k"] == 1
    with pytest.raises(ValueError, match="advantage_estimator='nope' is not a registered group estimator"):
        get_estimator("nope", group=True)
    with pytest.raises(ValueError, match="'basis' is not a registered group estimator .*use BASISConfig"):
        get_estimator("basis", group=True)


@pytest.mark.parametrize("size", [2, 5, 8])
def test_the_packaged_reference_is_the_fast_path_and_the_definition(size):
    """`trl_basis.advantages.reference` (the readable loops shipped beside the vectorised code) equals both the fast
    functions and this file's independent enumeration."""
    from trl_basis.advantages.reference import max_at_k_reference, maxpo_advantages_reference

    rewards = reward_groups(size, seed=size)
    for k in range(1, size):
        for row in rewards.tolist():
            assert max_at_k_reference(row, k) == pytest.approx(bf_rho(row, k), abs=1e-12)
            assert maxpo_advantages_reference(row, k) == pytest.approx(bf_advantages(row, k, "l2o"), abs=1e-12)
        fast = maxpo_advantages(rewards, k)
        slow = torch.tensor([maxpo_advantages_reference(row, k) for row in rewards.tolist()], dtype=torch.float64)
        torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)
