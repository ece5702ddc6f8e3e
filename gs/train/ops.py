"""Operations that change the set of Gaussians, written once for every method.

Each op changes the model's parameters, the Adam state (``exp_avg``, ``exp_avg_sq``) and any
per-Gaussian tensors of a strategy's state together, so they stay aligned row by row: rows
that survive keep their moments, new rows start with zero moments (as upstream).

The optimizer is one ``torch.optim.Adam`` with one param group per parameter, the group's
``name`` being the parameter key (as in the original 3DGS code).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from gs.model import GaussianModel
from gs.render.torch_backend import quat_to_rotmat


class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` with a shorter host path: the same state (``step`` on
    the device, ``exp_avg``, ``exp_avg_sq``) and the same ``torch._fused_adam_`` kernel per
    group, without the generic per-step bookkeeping (grouping by device and dtype, option
    checks), which cost ~0.5 ms of host time per training step on the profiled GPU runs.
    Options the short path does not handle (amsgrad, weight decay, maximize, a closure) go
    through ``torch.optim.Adam.step``."""

    def __init__(self, params, **kwargs: Any) -> None:
        super().__init__(params, fused=True, **kwargs)

    def _short_path_ok(self, group: dict) -> bool:
        return not (group["amsgrad"] or group["weight_decay"] or group["maximize"]
                    or group.get("differentiable") or group.get("decoupled_weight_decay")
                    or torch.is_tensor(group["lr"]))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - as torch.optim.Adam.step
        if closure is not None or not all(self._short_path_ok(g) for g in self.param_groups):
            return super().step(closure)
        calls, steps = [], []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            m, v, st = [], [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m.append(state["exp_avg"])
                v.append(state["exp_avg_sq"])
                st.append(state["step"])
            steps += st
            calls.append((group, params, m, v, st))
        if steps:
            torch._foreach_add_(steps, 1)
        for group, params, m, v, st in calls:
            beta1, beta2 = group["betas"]
            torch._fused_adam_(params, [p.grad for p in params], m, v, [], st, amsgrad=False, lr=group["lr"],
                               beta1=beta1, beta2=beta2, weight_decay=0.0, eps=group["eps"], maximize=False,
                               grad_scale=None, found_inf=None)
        return None


def make_optimizer(model: GaussianModel, lrs: dict[str, float], eps: float = 1e-15) -> torch.optim.Adam:
    """Adam with one group per parameter; on CUDA the fused kernel (:class:`FusedAdam`)."""
    groups = [{"params": [p], "lr": lrs[name], "name": name} for name, p in model.params.items()]
    if model.device.type == "cuda":
        return FusedAdam(groups, eps=eps)
    return torch.optim.Adam(groups, eps=eps)


def group_of(optimizer: torch.optim.Optimizer, name: str) -> dict:
    for g in optimizer.param_groups:
        if g.get("name") == name:
            return g
    raise KeyError(f"optimizer has no param group '{name}'")


def set_lr(optimizer: torch.optim.Optimizer, name: str, lr: float) -> None:
    group_of(optimizer, name)["lr"] = lr


def _replace(
    model: GaussianModel,
    optimizer: torch.optim.Optimizer | None,
    param_fn: Callable[[str, torch.Tensor], torch.Tensor],
    state_fn: Callable[[str, torch.Tensor], torch.Tensor],
    names: list[str] | None = None,
) -> None:
    """Swap every parameter (or those in ``names``) for ``param_fn(name, old)`` and its Adam
    moments for ``state_fn(key, old_moment)``; the optimizer keeps pointing at the new tensors."""
    for name in list(model.params.keys()) if names is None else names:
        old = model.params[name]
        new = torch.nn.Parameter(param_fn(name, old.detach()), requires_grad=old.requires_grad)
        if optimizer is not None:
            try:
                group = group_of(optimizer, name)
            except KeyError:
                group = None
            if group is not None:
                st = optimizer.state.pop(old, None)
                if st:
                    for key in ("exp_avg", "exp_avg_sq"):
                        if key in st:
                            st[key] = state_fn(key, st[key])
                    optimizer.state[new] = st
                group["params"][0] = new
        model.params[name] = new


def _align_state(state: dict | None, fn: Callable[[torch.Tensor], torch.Tensor], n_old: int) -> None:
    if not state:
        return
    for k, v in list(state.items()):
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n_old:
            state[k] = fn(v)


def remove(model: GaussianModel, optimizer: torch.optim.Optimizer | None, mask: torch.Tensor,
           state: dict | None = None) -> None:
    """Delete the Gaussians where ``mask`` is True."""
    keep = ~mask
    n_old = model.num_gaussians
    _replace(model, optimizer, lambda _n, p: p[keep], lambda _k, s: s[keep])
    _align_state(state, lambda t: t[keep], n_old)


def keep_only(model: GaussianModel, optimizer: torch.optim.Optimizer | None, index_or_mask: torch.Tensor,
              state: dict | None = None) -> None:
    """Keep exactly the selected Gaussians (a boolean mask or an index tensor)."""
    sel = index_or_mask
    n_old = model.num_gaussians
    _replace(model, optimizer, lambda _n, p: p[sel], lambda _k, s: s[sel])
    _align_state(state, lambda t: t[sel], n_old)


def append(model: GaussianModel, optimizer: torch.optim.Optimizer | None, new: dict[str, torch.Tensor],
           state: dict | None = None) -> None:
    """Append Gaussians (``new`` has a tensor per parameter); their Adam moments and strategy
    statistics start at zero."""
    m = next(iter(new.values())).shape[0]
    n_old = model.num_gaussians
    _replace(
        model, optimizer,
        lambda n, p: torch.cat([p, new[n].to(p.dtype)], 0),
        lambda _k, s: torch.cat([s, s.new_zeros((m, *s.shape[1:]))], 0),
    )
    _align_state(state, lambda t: torch.cat([t, t.new_zeros((m, *t.shape[1:]))], 0), n_old)


def duplicate(model: GaussianModel, optimizer: torch.optim.Optimizer | None, mask: torch.Tensor,
              state: dict | None = None) -> None:
    """Clone: append exact copies of the selected Gaussians."""
    sel = mask
    append(model, optimizer, {n: p.detach()[sel].clone() for n, p in model.params.items()}, state)


def split(model: GaussianModel, optimizer: torch.optim.Optimizer | None, mask: torch.Tensor,
          state: dict | None = None, n_children: int = 2, scale_divisor: float = 1.6,
          generator: torch.Generator | None = None) -> None:
    """3DGS split: each selected Gaussian is replaced by ``n_children`` samples
    mu + R eps, eps ~ N(0, diag(s^2)), with scale s / 1.6; rotation, SH, opacity and any
    extra parameter copied; the parent is deleted."""
    idx = torch.nonzero(mask, as_tuple=False).squeeze(-1)
    if idx.numel() == 0:
        return
    p = {n: t.detach() for n, t in model.params.items()}
    scales = torch.exp(p["scales"][idx]).repeat(n_children, 1)
    rots = quat_to_rotmat(torch.nn.functional.normalize(p["quats"][idx], dim=-1)).repeat(n_children, 1, 1)
    eps = torch.randn(scales.shape, device=scales.device, generator=generator) * scales
    new = {n: t[idx].repeat(n_children, *([1] * (t.dim() - 1))) for n, t in p.items()}
    new["means"] = (rots @ eps[..., None])[..., 0] + p["means"][idx].repeat(n_children, 1)
    new["scales"] = torch.log(scales / scale_divisor)
    append(model, optimizer, new, state)
    parent = torch.zeros(model.num_gaussians, dtype=torch.bool, device=mask.device)
    parent[idx] = True
    remove(model, optimizer, parent, state)


def long_axis_split(model: GaussianModel, optimizer: torch.optim.Optimizer | None, mask: torch.Tensor,
                    state: dict | None = None, distance: float = 0.45, opacity_factor: float = 0.6) -> None:
    """Improved-GS "long-axis split": each selected Gaussian is replaced by two children placed
    symmetrically along its longest local axis j, at mu +/- R (3 s_j distance) e_j; child
    scales s_j (1 - distance) on that axis and s sqrt(1 - distance^2) on the others; child
    alpha = opacity_factor * parent alpha; rotation, SH and any extra parameter copied; the
    parent is deleted (net +1 per selected Gaussian). Deterministic (no sampling)."""
    idx = torch.nonzero(mask, as_tuple=False).squeeze(-1) if mask.dtype == torch.bool else mask
    if idx.numel() == 0:
        return
    p = {n: t.detach() for n, t in model.params.items()}
    s = torch.exp(p["scales"][idx])
    j = s.argmax(dim=1, keepdim=True)
    long_axis = torch.zeros_like(s).scatter(1, j, 1.0)
    offset_local = s * long_axis * (3.0 * distance)
    rots = quat_to_rotmat(torch.nn.functional.normalize(p["quats"][idx], dim=-1))
    offset = (rots @ offset_local[..., None])[..., 0]
    h = (1.0 - distance * distance) ** 0.5
    child_s = torch.where(long_axis > 0, s * (1.0 - distance), s * h)
    alpha = torch.sigmoid(p["opacities"][idx]) * opacity_factor
    new = {n: t[idx].repeat(2, *([1] * (t.dim() - 1))) for n, t in p.items()}
    mu = p["means"][idx]
    new["means"] = torch.cat([mu + offset, mu - offset], 0)
    new["scales"] = torch.log(child_s).repeat(2, 1)
    new["opacities"] = torch.logit(alpha).repeat(2, *([1] * (alpha.dim() - 1)))
    append(model, optimizer, new, state)
    parent = torch.zeros(model.num_gaussians, dtype=torch.bool, device=model.device)
    parent[idx] = True
    remove(model, optimizer, parent, state)


def reset_opacity(model: GaussianModel, optimizer: torch.optim.Optimizer | None, max_opacity: float = 0.01) -> None:
    """alpha <- min(alpha, max_opacity), and the opacity group's Adam moments zeroed."""
    cap = torch.logit(torch.tensor(max_opacity)).item()
    _replace(model, optimizer, lambda _n, p: torch.clamp(p, max=cap), lambda _k, s: torch.zeros_like(s),
             names=["opacities"])


def add_parameter(model: GaussianModel, optimizer: torch.optim.Optimizer, name: str, value: torch.Tensor,
                  lr: float) -> None:
    """Add a per-Gaussian parameter (first dim N) with its own Adam group (e.g. an importance
    score); the ops above keep it aligned like the others."""
    if value.shape[0] != model.num_gaussians:
        raise ValueError(f"parameter '{name}' has {value.shape[0]} rows, the model {model.num_gaussians}")
    model.params[name] = torch.nn.Parameter(value.to(model.device))
    optimizer.add_param_group({"params": [model.params[name]], "lr": lr, "name": name})
