"""topo's optimisers against torch.optim's, step by step, bit for bit."""

from __future__ import annotations

import pytest
import torch

from topo.train.optim import SGD, Adam

# torch.optim imports torch._dynamo (seconds): these tests run on one worker of the suite,
# with the other tests that use torch.optim or Lightning
pytestmark = pytest.mark.xdist_group("torch-dynamo")


def _pair(seed: int):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(50, generator=generator)
    return (torch.nn.Parameter(values.clone()), torch.nn.Parameter(values.clone()),
            generator)


@pytest.mark.parametrize("ours, theirs", [
    (lambda p: SGD([p], lr=0.05, momentum=0.9, weight_decay=1e-3),
     lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9, weight_decay=1e-3, foreach=False)),
    (lambda p: SGD([p], lr=0.05),
     lambda p: torch.optim.SGD([p], lr=0.05, foreach=False)),
    (lambda p: Adam([p], lr=0.003, weight_decay=1e-4),
     lambda p: torch.optim.Adam([p], lr=0.003, weight_decay=1e-4, foreach=False)),
    (lambda p: Adam([p], lr=0.01),
     lambda p: torch.optim.Adam([p], lr=0.01, foreach=False)),
])
def test_steps_and_state_equal_torch_optim_bit_for_bit(ours, theirs):
    a, b, generator = _pair(0)
    opt_a, opt_b = ours(a), theirs(b)
    for _ in range(25):
        grad = torch.randn(50, generator=generator) * 3
        a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
        assert torch.equal(a.data, b.data)
    state_a, state_b = opt_a.state.get(a, {}), opt_b.state.get(b, {})
    assert set(state_a) == set(state_b)
    for key in state_b:
        assert torch.equal(state_a[key], state_b[key]) and state_a[key].dtype == \
            state_b[key].dtype
    opt_a.zero_grad()
    assert a.grad is None


def test_a_parameter_without_gradient_is_left_alone():
    a, _, _ = _pair(1)
    frozen = torch.nn.Parameter(torch.ones(3))
    opt = SGD([a, frozen], lr=0.1, momentum=0.9)
    a.grad = torch.ones(50)
    opt.step()
    assert frozen.data.tolist() == [1.0, 1.0, 1.0] and frozen not in opt.state
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and not a.grad.any()
    assert opt.param_groups[0]["params"] == [a, frozen]
