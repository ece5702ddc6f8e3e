"""Clone / split / prune / reset keep parameters, Adam moments and strategy state aligned."""

import torch

from gs.model import GaussianModel
from gs.train import ops


def model_with_moments(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = GaussianModel(dict(
        means=torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3),  # row id in every coordinate
        scales=torch.randn(n, 3, generator=g) - 2, quats=torch.randn(n, 4, generator=g),
        opacities=torch.randn(n, generator=g), sh0=torch.randn(n, 1, 3, generator=g),
        shN=torch.randn(n, 15, 3, generator=g)), 3)
    opt = ops.make_optimizer(m, {k: 1e-3 for k in m.params})
    loss = sum((p * torch.randn(p.shape, generator=g)).sum() for p in m.params.values())
    loss.backward()
    opt.step()
    opt.zero_grad()
    return m, opt


def moments(opt, m, name):
    return opt.state[m.params[name]]["exp_avg"]


def test_remove_keeps_moments_of_survivors_and_state():
    m, opt = model_with_moments()
    before = {k: moments(opt, m, k).clone() for k in m.params}
    state = {"acc": torch.arange(20.0), "scalar": 3}
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[1, 5, 7]] = True
    ops.remove(m, opt, mask, state)
    keep = ~mask
    assert m.num_gaussians == 17
    for k in m.params:
        assert opt.param_groups[[g["name"] for g in opt.param_groups].index(k)]["params"][0] is m.params[k]
        assert torch.equal(moments(opt, m, k), before[k][keep])
    assert torch.equal(state["acc"], torch.arange(20.0)[keep]) and state["scalar"] == 3


def test_duplicate_appends_copies_with_zero_moments():
    m, opt = model_with_moments()
    before = moments(opt, m, "means").clone()
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[2, 3]] = True
    state = {"acc": torch.ones(20)}
    ops.duplicate(m, opt, mask, state)
    assert m.num_gaussians == 22
    assert torch.equal(m.params["means"][20:], m.params["means"][[2, 3]])
    assert torch.equal(moments(opt, m, "means")[:20], before)
    assert torch.count_nonzero(moments(opt, m, "means")[20:]) == 0
    assert torch.equal(state["acc"], torch.cat([torch.ones(20), torch.zeros(2)]))
    # the optimizer still steps every parameter
    sum(p.sum() for p in m.params.values()).backward()
    opt.step()


def test_split_replaces_parent_by_two_smaller_children():
    m, opt = model_with_moments()
    mask = torch.zeros(20, dtype=torch.bool)
    mask[4] = True
    parent_scale = m.scales[4].detach().clone()
    parent_sh = m.params["sh0"][4].detach().clone()
    ops.split(m, opt, mask)
    assert m.num_gaussians == 21
    ids = m.params["means"].detach()
    assert not torch.any(torch.all(ids == 4.0, dim=1))  # parent gone (children are displaced)
    assert torch.allclose(m.scales[-2:], (parent_scale / 1.6).expand(2, 3), rtol=1e-5)
    assert torch.equal(m.params["sh0"][-2:], parent_sh.expand(2, 1, 3))
    assert torch.count_nonzero(moments(opt, m, "scales")[-2:]) == 0


def test_reset_opacity_caps_and_zeroes_only_opacity_moments():
    m, opt = model_with_moments()
    means_m = moments(opt, m, "means").clone()
    ops.reset_opacity(m, opt, 0.01)
    assert torch.all(m.opacities <= 0.01 + 1e-6)
    assert torch.count_nonzero(moments(opt, m, "opacities")) == 0
    assert torch.equal(moments(opt, m, "means"), means_m)


def test_add_parameter_is_kept_aligned():
    m, opt = model_with_moments()
    ops.add_parameter(m, opt, "importance", torch.arange(20.0), lr=0.01)
    mask = torch.zeros(20, dtype=torch.bool)
    mask[0] = True
    ops.remove(m, opt, mask)
    assert torch.equal(m.params["importance"].detach(), torch.arange(1.0, 20.0))


def test_fused_adam_short_path_equals_torch_fused_adam():
    """FusedAdam's short host path runs the same kernel as torch.optim.Adam(fused=True)
    (fused Adam also runs on the CPU), groups with their own lr, a param without grad skipped."""
    from gs.train.ops import FusedAdam

    torch.manual_seed(0)
    init = [torch.randn(50, 3), torch.randn(50, 1), torch.randn(7)]
    lrs = [1e-2, 3e-3, 5e-2]
    runs = []
    for cls in (FusedAdam, lambda g, **k: torch.optim.Adam(g, fused=True, **k)):
        ps = [torch.nn.Parameter(t.clone()) for t in init]
        opt = cls([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], eps=1e-15)
        for it in range(5):
            opt.zero_grad(set_to_none=True)
            loss = (ps[0] ** 2).sum() + (ps[1].sin()).sum() + (0 if it < 2 else (ps[2] ** 3).sum())
            loss.backward()
            opt.step()
        runs.append((ps, opt))
    (a, oa), (b, ob) = runs
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)
        assert torch.equal(oa.state[pa]["exp_avg_sq"], ob.state[pb]["exp_avg_sq"])
        assert torch.equal(oa.state[pa]["step"], ob.state[pb]["step"])
