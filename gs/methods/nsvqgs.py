"""NSVQ-GS: noise-substituted vector quantization for 3D Gaussian Splatting.

Paper: Wang, Vali, Solin, "Compressing 3D Gaussian Splatting by Noise-Substituted Vector
Quantization", SCIA 2025 (arXiv 2504.03059); upstream code AaltoML/nsvqgs. Spec:
methods/nsvqgs.md (section numbers below refer to it).

Training (:class:`NSVQStrategy`, spec §3, all iteration numbers in 30k-recipe units, scaled by
``ctx.at``; the run is 45k long, :meth:`NSVQStrategy.num_iterations`):

1. it <= 15k: the 3DGS baseline (:class:`~gs.methods.baseline.BaselineStrategy`), so a run can
   start from the baseline's checkpoint at 15k (``init_from_baseline_at``).
2. 15k < it <= 20k: + ``lambda_reg * sum(sigmoid(o))``; at every multiple of 1000 prune
   sigmoid(o) < 0.005.
3. it = 20k (after the last prune): one codebook per attribute - raw log-scale (3), raw
   unnormalised quaternion (4), SH DC (3), SH rest (45, coefficient-major) - initialised by
   k-means over all Gaussians (K random distinct rows, 10 Lloyd iterations, tol 1e-4, an empty
   cluster keeps its centroid).
4. 20k < it <= 43k: a no-grad render of the unquantized model gives the visible set; for the
   visible rows x: k* = nearest code (on detached x), x~ = x + ||x - C[k*]|| / ||v|| * v with
   v ~ N(0, I) fresh each call and C NOT detached (the codebooks learn through the norm);
   usage counters (+1 per iteration per selected code); dead codes (used on < 1 % of the
   iterations since the last check; checks every 100 its up to 22k, every 500 after) are
   overwritten by randomly drawn used codes. The codebooks are Adam groups named
   ``codebook.<key>`` with the lr of their attribute (x ``codebook_lr_scale``).
5. it = 43k: hard assignment of all Gaussians, indices frozen; 43k < it <= 45k: render
   C[idx] (gradients to the codebooks), xyz and opacity keep training.
6. ``finalize`` writes C[idx] into the model (the saved PLY is exactly what the codec decodes)
   and the codebooks + indices into ``ctx.log["artifacts"]["nsvq_state.npz"]``.

Codec (:class:`NSVQCodec`, spec §5-6): one container file (:mod:`gs.codecs.container`) with
float32 xyz and opacity logits, the float32 codebooks and one index stream per attribute. With
``entropy_coding`` (default) the index streams are coded with the measured best of fixed width,
zlib, lzma, zstd and a static categorical ANS model, and the float arrays with the measured
best of raw / zlib / lzma (+ byte shuffle) (:mod:`gs.codecs.entropy`); the statistics report
both this size and the size in upstream's own layout, ``size_bytes_paper_format``: the bytes of
the ``compressed_model.zip`` upstream would write for the same model (:func:`upstream_zip`: float32
positions and opacities in a PLY, fixed-width indices, npy arguments, pth codebooks, deflated),
built in memory; ``size_bytes_fixed_width`` is that payload raw (16 B/Gaussian + ceil(log2 K)-bit
indices + float32 codebooks, no zip, no file headers). ``decode`` rebuilds a standard GaussianModel from the
file alone. Without training artifacts (a model from another method) the codec falls back to
post-hoc k-means with the same codebook sizes.

Deliberate differences from upstream:

- Dead-code replacement follows upstream by default (the first used codes, repeated and
  shuffled only when fewer are used than dead, + 1e-12 N(0,1), Adam moments kept). 1e-12 is
  below float32 resolution, so the copies are exact duplicates that split only by chance
  (spec §8.5); ``fresh_dead_codes=True`` instead draws used codes at random, adds
  ``replace_noise_rel`` (1e-3) x the codebook's per-dimension std and zeroes the moments of
  replaced codes (a fresh code).
- As upstream, only the visible subset is quantized and rendered in the NSVQ phase. Without
  a current camera in the context (``ctx.camera``) every Gaussian is quantized and rendered.
- The nearest-code search is a fused Triton kernel on CUDA (:mod:`gs.train.nearest`): the
  same argmin as upstream's distance matrix without writing it (the matrix cost ~14 ms/step).
- When a scene has fewer Gaussians than codes, k-means starts from all rows plus randomly
  drawn rows with a small jitter (upstream would fail); only tiny test scenes hit this.
- Codebook learning rates are the Trainer's lrs of the same attributes (equal to upstream's
  codebook lrs: scale 5e-3, rotation 1e-3, DC 2.5e-3, rest 1.25e-4).
- ``opacity_lr`` (0.05, upstream's, from its 2023 3DGS fork) is set on the optimizer when the
  strategy starts; a run that starts from the baseline's 15k checkpoint keeps the baseline's
  prefix (opacity lr 0.025, the Trainer's): a listed deviation (deviations/nsvqgs.yaml).
- The bitstream is one checksummed container instead of a zip of ply/bin/npy/pth files, and
  (beyond the paper, reported separately) its index streams are entropy coded.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs.codecs import vq
from gs.codecs.base import Codec, CodecContext, require_gaussians
from gs.codecs.container import Container, write_container_set
from gs.codecs.entropy import bits_for, compress_bytes, decode_symbols, encode_symbols, msb_bits, symbols_method
from gs.codecs.vq import attr_matrix, fixed_width_bytes, matrix_to_param, noise_substitute, take_rows
from gs.methods.baseline import DENSIFY_PARAMS, BaselineStrategy
from gs.methods.registry import MethodSpec, param_schema
from gs.model import GaussianModel, num_sh_bases
from gs.train import ops
from gs.train.nearest import nearest_code
from gs.train.strategy import TrainContext

#: quantized attributes: model key -> the parameter naming its codebook size
VQ_ATTRS: dict[str, str] = {"scales": "k_scale", "quats": "k_rotation", "sh0": "k_dc", "shN": "k_sh"}
#: the paper's README "4k" configuration (spec §2)
DEFAULT_K = {"k_scale": 4096, "k_rotation": 4096, "k_dc": 1024, "k_sh": 1024}
ARTIFACT = "nsvq_state.npz"
ARTIFACT_KEY = "nsvq_state"  # how gs.codecs.run.load_aux names it
#: our attribute keys -> upstream's, in the order of the README's ``--quant_params sh dc rot scale``
UPSTREAM_KEYS: dict[str, str] = {"shN": "sh", "sh0": "dc", "quats": "rot", "scales": "scale"}
BITSTREAM_FILE = "nsvq.gsbc"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------- VQ primitives
def kmeans(x: torch.Tensor, k: int, iters: int = 10, tol: float = 1e-4,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means codebook (spec §3.3) with the nearest-code search of training."""
    return vq.kmeans(x, k, nearest_code, iters, tol, generator)


def upstream_zip(means: torch.Tensor, opacities: torch.Tensor, codebooks: dict[str, torch.Tensor],
                 indices: dict[str, torch.Tensor]) -> bytes:
    """The model in upstream's own stored layout (spec §5), as the bytes of its
    ``compressed_model.zip``: ``point_cloud.ply`` (float32 x, y, z, opacity), ``vq_inds.bin``
    (every attribute's indices, MSB first, ceil(log2 K) bits each, concatenated in
    ``--quant_params`` order and padded to a byte once), ``vq_args.npy`` (the pickled dict of bit
    widths, lengths and attribute order), ``codebook.pth`` (torch.save of the float32 codebooks),
    deflated. Its length is the size the paper reports."""
    import io
    import zipfile

    from plyfile import PlyData, PlyElement

    n = int(means.shape[0])
    vertex = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("opacity", "<f4")])
    xyz = means.detach().float().cpu().numpy()
    vertex["x"], vertex["y"], vertex["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    vertex["opacity"] = opacities.detach().float().cpu().numpy().reshape(n)
    ply = io.BytesIO()
    PlyData([PlyElement.describe(vertex, "vertex")]).write(ply)
    bits, args, books = [], {"n_bits": {}, "len": {}, "quant_params": []}, {}
    for ours, theirs in UPSTREAM_KEYS.items():
        if ours not in codebooks:
            continue
        width = bits_for(int(codebooks[ours].shape[0]))
        b = msb_bits(indices[ours].detach().cpu().numpy(), width)  # one stream of every attribute's bits
        bits.append(b)
        args["n_bits"][theirs], args["len"][theirs] = width, int(b.size)
        args["quant_params"].append(theirs)
        books[theirs] = codebooks[ours].detach().float().cpu()
    inds = np.packbits(np.concatenate(bits) if bits else np.zeros(0, np.uint8)).tobytes()
    npy, pth = io.BytesIO(), io.BytesIO()
    np.save(npy, np.array(args, dtype=object), allow_pickle=True)
    torch.save(books, pth)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("vq_inds.bin", inds), ("vq_args.npy", npy.getvalue()), ("codebook.pth", pth.getvalue()),
                           ("point_cloud.ply", ply.getvalue())]:
            z.writestr(name, data)
    return out.getvalue()


# ---------------------------------------------------------------------------- strategy
class NSVQStrategy(BaselineStrategy):
    """NSVQ-GS training (see the module docstring). Parameters (iterations in 30k-recipe
    units): codebook sizes ``k_scale``, ``k_rotation``, ``k_dc``, ``k_sh``; schedule
    ``reg_start``, ``vq_start``, ``ft_start``, ``total_iterations``; ``lambda_reg``,
    ``prune_every``, ``reg_prune_opacity``; k-means ``kmeans_iters``, ``kmeans_tol``;
    ``codebook_lr_scale``; dead codes ``dead_threshold``, ``dead_fine_until``,
    ``dead_fine_every``, ``dead_every``, ``fresh_dead_codes``, ``replace_noise_rel``; ``opacity_lr``; ``init_max_dist2``; ``visible_only``,
    ``fine_tune``; codec-only ``entropy_coding`` (accepted and ignored here); the rest goes to
    the baseline's densification config."""

    def __init__(self, k_scale: int = 4096, k_rotation: int = 4096, k_dc: int = 1024, k_sh: int = 1024,
                 reg_start: int = 15_000, vq_start: int = 20_000, ft_start: int = 43_000,
                 total_iterations: int = 45_000, lambda_reg: float = 1e-7, prune_every: int = 1000,
                 reg_prune_opacity: float = 0.005, kmeans_iters: int = 10, kmeans_tol: float = 1e-4,
                 codebook_lr_scale: float = 1.0, dead_threshold: float = 0.01, dead_fine_until: int = 22_000,
                 dead_fine_every: int = 100, dead_every: int = 500, fresh_dead_codes: bool = False,
                 replace_noise_rel: float = 1e-3, opacity_lr: float = 0.05, init_max_dist2: float = 4.0,
                 visible_only: bool = True, fine_tune: bool = True, entropy_coding: bool = True,
                 **baseline_params: Any) -> None:
        super().__init__(**baseline_params)
        self.k = {"scales": int(k_scale), "quats": int(k_rotation), "sh0": int(k_dc), "shN": int(k_sh)}
        for key, kk in self.k.items():
            if kk < 1:
                raise ValueError(f"codebook size for '{key}' must be >= 1, got {kk}")
        if not reg_start <= vq_start <= ft_start <= total_iterations:
            raise ValueError("need reg_start <= vq_start <= ft_start <= total_iterations")
        self.reg_start, self.vq_start, self.ft_start = reg_start, vq_start, ft_start
        self.total_iterations = total_iterations
        self.lambda_reg, self.prune_every, self.reg_prune_opacity = lambda_reg, prune_every, reg_prune_opacity
        self.kmeans_iters, self.kmeans_tol = kmeans_iters, kmeans_tol
        self.codebook_lr_scale = codebook_lr_scale
        self.dead_threshold, self.dead_fine_until = dead_threshold, dead_fine_until
        self.dead_fine_every, self.dead_every = dead_fine_every, dead_every
        self.fresh_dead_codes, self.replace_noise_rel = bool(fresh_dead_codes), replace_noise_rel
        self.opacity_lr, self.init_max_dist2 = opacity_lr, init_max_dist2
        self.visible_only, self.fine_tune = visible_only, fine_tune
        # VQ state, kept out of self.state (whose N-row tensors the ops re-align; a K-row
        # codebook must never be sliced by a prune)
        self.codebooks: dict[str, torch.nn.Parameter] = {}
        self.used: dict[str, torch.Tensor] = {}
        self.indices: dict[str, torch.Tensor] = {}
        self.last_update = 0
        self.replaced = 0
        self._pending_adam: dict[str, dict[str, torch.Tensor]] = {}
        self._gen: torch.Generator | None = None
        self._rasterize = None
        self._optimizer: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------------ schedule
    def num_iterations(self, ctx: TrainContext) -> int:
        end = self.total_iterations if self.fine_tune else self.ft_start
        return ctx.at(end)

    def phase(self, ctx: TrainContext, step: int) -> str:
        """'baseline' | 'reg' | 'nsvq' | 'finetune' for the render/loss of iteration ``step``."""
        if step <= ctx.at(self.reg_start):
            return "baseline"
        if step <= ctx.at(self.vq_start):
            return "reg"
        if step <= ctx.at(self.ft_start):
            return "nsvq"
        return "finetune"

    def vq_keys(self, model: GaussianModel) -> list[str]:
        return [k for k in VQ_ATTRS if attr_matrix(model.params, k).shape[1] > 0]

    # ------------------------------------------------------------------ setup
    def _generator(self, ctx: TrainContext) -> torch.Generator:
        if self._gen is None:
            self._gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed + 20_000)
        return self._gen

    def initialize(self, ctx: TrainContext) -> None:
        super().initialize(ctx)
        for g in ctx.optimizer.param_groups:  # upstream's opacity lr from here on
            if g.get("name") == "opacities":
                g["lr"] = self.opacity_lr
        if ctx.step == 0:  # a fresh start: upstream clamps the initial squared NN distance
            ctx.model.params["scales"].data.clamp_(max=0.5 * math.log(self.init_max_dist2))
        if self.codebooks:
            self._attach_codebooks(ctx)
        elif ctx.step >= ctx.at(self.vq_start):  # resumed at/after the VQ start without codebooks
            self.build_codebooks(ctx, ctx.step)
        if ctx.step >= ctx.at(self.ft_start) and not self.indices:
            self.freeze_assignment(ctx)

    def build_codebooks(self, ctx: TrainContext, step: int) -> None:
        """k-means initialisation over all Gaussians (spec §3.3)."""
        gen = self._generator(ctx)
        self.codebooks, self.used = {}, {}
        for key in self.vq_keys(ctx.model):
            x = attr_matrix(ctx.model.params, key).detach()
            c = kmeans(x, self.k[key], self.kmeans_iters, self.kmeans_tol, generator=gen)
            self.codebooks[key] = torch.nn.Parameter(c.contiguous())
            self.used[key] = torch.zeros(self.k[key], device=c.device)
        self.last_update = step
        ctx.log.setdefault("nsvq", {})["num_gaussians_at_vq_start"] = ctx.model.num_gaussians
        self._attach_codebooks(ctx)

    def _attach_codebooks(self, ctx: TrainContext) -> None:
        """Put the codebooks on the device and into the optimizer (one Adam group each)."""
        opt = self._optimizer = ctx.optimizer
        for key in list(self.codebooks):
            cb = self.codebooks[key]
            if cb.device != ctx.device:
                cb = torch.nn.Parameter(cb.detach().to(ctx.device))
                self.codebooks[key] = cb
            if key in self.used:
                self.used[key] = self.used[key].to(ctx.device)
            else:
                self.used[key] = torch.zeros(cb.shape[0], device=ctx.device)
            name = f"codebook.{key}"
            try:
                group = ops.group_of(opt, name)
                old = group["params"][0]
                if old is not cb:
                    st = opt.state.pop(old, None)
                    group["params"][0] = cb
                    if st:
                        opt.state[cb] = st
            except KeyError:
                lr = ops.group_of(opt, key)["lr"] * self.codebook_lr_scale
                opt.add_param_group({"params": [cb], "lr": lr, "name": name})
            pending = self._pending_adam.pop(key, None)
            if pending and pending["exp_avg"].shape == cb.shape:
                fused = bool(opt.defaults.get("fused"))
                opt.state[cb] = {
                    "step": pending["step"].to(ctx.device if fused else "cpu"),
                    "exp_avg": pending["exp_avg"].to(ctx.device),
                    "exp_avg_sq": pending["exp_avg_sq"].to(ctx.device),
                }
        for key in list(self.indices):
            self.indices[key] = self.indices[key].to(ctx.device)

    # ------------------------------------------------------------------ render
    def _visible(self, ctx: TrainContext) -> torch.Tensor | None:
        if not self.visible_only or ctx.camera is None:
            return None
        if self._rasterize is None:
            from gs.render import get_backend

            self._rasterize = get_backend(ctx.backend, ctx.device)
        m = ctx.model
        # radii depend on geometry and opacity only: the DC colour at degree 0 and the raw
        # quaternions (every backend normalises them) spare this extra render the SH work
        with torch.no_grad():
            out = self._rasterize(m.params["means"], m.params["quats"], m.scales, m.opacities, m.params["sh0"],
                                  ctx.camera, sh_degree=0, background=ctx.background)
        r = out.radii
        return (r > 0) if r.dim() == 1 else (r > 0).any(-1)

    def _activated(self, ctx: TrainContext, raw: dict[str, torch.Tensor],
                   rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Activated render inputs from quantized raw matrices; attributes that are not
        quantized come from the model (restricted to ``rows`` when given)."""
        m = ctx.model
        deg = m.sh_degree
        full = {k: matrix_to_param(k, v, deg) for k, v in raw.items()}

        def model_param(key: str) -> torch.Tensor:
            p = m.params[key]
            return p if rows is None else take_rows(p, rows)

        out: dict[str, torch.Tensor] = {}
        out["scales"] = torch.exp(full["scales"] if "scales" in full else model_param("scales"))
        out["quats"] = torch.nn.functional.normalize(full["quats"] if "quats" in full else model_param("quats"), dim=-1)
        out["sh"] = torch.cat([full["sh0"] if "sh0" in full else model_param("sh0"),
                               full["shN"] if "shN" in full else model_param("shN")], dim=1)
        return out

    def render_params(self, ctx: TrainContext) -> dict[str, torch.Tensor] | None:
        ph = self.phase(ctx, ctx.step)
        if ph == "nsvq" and self.codebooks:
            return self._nsvq_params(ctx)
        if ph == "finetune" and self.indices:
            return self._activated(ctx, {k: take_rows(cb, self.indices[k]) for k, cb in self.codebooks.items()})
        return None

    def _nsvq_params(self, ctx: TrainContext) -> dict[str, torch.Tensor]:
        """Noise-substituted attributes; with a visible set, only those rows are rendered
        (spec §3.4c), so every returned tensor, means and opacities included, is sub-selected."""
        m = ctx.model
        vis = self._visible(ctx)
        rows = None if vis is None else torch.nonzero(vis, as_tuple=False).squeeze(1)
        if rows is not None and rows.numel() == 0:
            rows = None  # nothing in view: quantize and render every row (no empty render)
        raw: dict[str, torch.Tensor] = {}
        for key, cb in self.codebooks.items():
            full = attr_matrix(m.params, key)
            x = full if rows is None else take_rows(full, rows)
            k_star = nearest_code(x, cb)
            with torch.no_grad():
                self.used[key][k_star] += 1  # non-accumulating: +1 per selected code
            raw[key] = noise_substitute(x, take_rows(cb, k_star))
        out = self._activated(ctx, raw, rows)
        if rows is not None:
            out["means"] = take_rows(m.params["means"], rows)
            out["opacities"] = torch.sigmoid(take_rows(m.params["opacities"], rows))
        return out

    # ------------------------------------------------------------------ loss / steps
    def loss(self, ctx: TrainContext, step: int, out, gt: torch.Tensor) -> torch.Tensor | None:
        base = super().loss(ctx, step, out, gt)
        if self.phase(ctx, step) == "reg" and self.lambda_reg > 0:
            reg = self.lambda_reg * torch.sigmoid(ctx.model.params["opacities"]).sum()
            return reg if base is None else base + reg
        return base

    def after_backward(self, ctx: TrainContext, step: int, out) -> None:
        if self.phase(ctx, step) == "baseline":
            super().after_backward(ctx, step, out)

    def after_step(self, ctx: TrainContext, step: int, out) -> None:
        ph = self.phase(ctx, step)
        if ph == "baseline":
            super().after_step(ctx, step, out)
            return
        if ph == "reg":
            if step % ctx.every(self.prune_every) == 0:
                mask = ctx.model.opacities.detach() < self.reg_prune_opacity
                if bool(mask.any()) and not bool(mask.all()):
                    ops.remove(ctx.model, ctx.optimizer, mask, self.state)
            if step == ctx.at(self.vq_start):
                self.build_codebooks(ctx, step)
            return
        if ph == "nsvq":
            if self.is_dead_code_step(ctx, step):
                self.replace_dead_codes(ctx, step)
            if step == ctx.at(self.ft_start):
                self.freeze_assignment(ctx)

    def is_dead_code_step(self, ctx: TrainContext, step: int) -> bool:
        if step <= ctx.at(self.dead_fine_until):
            return step % ctx.every(self.dead_fine_every) == 0
        return step % ctx.every(self.dead_every) == 0

    @torch.no_grad()
    def replace_dead_codes(self, ctx: TrainContext, step: int) -> None:
        """Codes used on < dead_threshold of the iterations since the last check are
        overwritten by used codes (spec §3.4e): upstream's first used codes + 1e-12 noise with
        the Adam moments kept, or with ``fresh_dead_codes`` random used codes + relative noise
        with the moments zeroed; counters reset."""
        span = max(1, step - self.last_update)
        gen = self._generator(ctx)
        for key, cb in self.codebooks.items():
            dead = self.used[key] / span < self.dead_threshold
            n_dead = int(dead.sum())
            alive = torch.nonzero(~dead, as_tuple=False).squeeze(1)
            if n_dead == 0 or alive.numel() == 0:
                continue
            shuffle = self.fresh_dead_codes or alive.numel() < n_dead
            pool = alive.repeat(-(-n_dead // alive.numel()))
            if shuffle:
                pool = pool[torch.randperm(pool.numel(), generator=gen, device=gen.device).to(pool.device)]
            new = cb[pool[:n_dead]].clone()
            noise = torch.randn(new.shape, generator=gen, device=gen.device).to(new.device)
            if self.fresh_dead_codes:
                new += noise * cb.std(0, keepdim=True).nan_to_num(0.0) * self.replace_noise_rel
            else:  # upstream: 1e-12 * N(0,1) (no effect in float32)
                new += noise * 1e-12
            cb[dead] = new
            st = ctx.optimizer.state.get(cb)
            if st and self.fresh_dead_codes:
                for mom in ("exp_avg", "exp_avg_sq"):
                    if mom in st:
                        st[mom][dead] = 0
            self.replaced += n_dead
        for u in self.used.values():
            u.zero_()
        self.last_update = step
        ctx.log.setdefault("nsvq", {})["dead_codes_replaced"] = self.replaced

    @torch.no_grad()
    def freeze_assignment(self, ctx: TrainContext) -> None:
        """Hard assignment of every Gaussian to its nearest code; indices frozen (spec §3.5)."""
        if not self.codebooks:
            self.build_codebooks(ctx, ctx.step)
        self.indices = {k: nearest_code(attr_matrix(ctx.model.params, k), cb) for k, cb in self.codebooks.items()}

    @torch.no_grad()
    def finalize(self, ctx: TrainContext) -> None:
        super().finalize(ctx)
        if not self.codebooks:
            return  # stopped before the VQ start: a plain 3DGS model, the codec quantizes post hoc
        if not self.indices:
            self.freeze_assignment(ctx)
        m = ctx.model
        for key, cb in self.codebooks.items():
            q = matrix_to_param(key, cb.detach()[self.indices[key]], m.sh_degree)
            m.params[key].copy_(q)
        state: dict[str, np.ndarray] = {}
        for key, cb in self.codebooks.items():
            state[f"codebook.{key}"] = cb.detach().float().cpu().numpy()
            state[f"index.{key}"] = self.indices[key].cpu().numpy().astype(np.int64)
        ctx.log.setdefault("artifacts", {})[ARTIFACT] = state
        ctx.log.setdefault("nsvq", {}).update(
            num_gaussians=m.num_gaussians, codebook_sizes={k: int(c.shape[0]) for k, c in self.codebooks.items()},
            codes_in_use={k: int(torch.unique(i).numel()) for k, i in self.indices.items()})

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        out = dict(self.state)
        out["nsvq.last_update"] = self.last_update
        out["nsvq.replaced"] = self.replaced
        for key, cb in self.codebooks.items():
            out[f"nsvq.codebook.{key}"] = cb.detach()
            out[f"nsvq.used.{key}"] = self.used[key]
        for key, idx in self.indices.items():
            out[f"nsvq.index.{key}"] = idx
        # the codebooks' Adam moments travel with the strategy (the optimizer is rebuilt
        # from the model's groups on resume)
        opt_state = self._optimizer.state if self._optimizer is not None else None
        if opt_state is not None:
            for key, cb in self.codebooks.items():
                st = opt_state.get(cb)
                if st and "exp_avg" in st:
                    for mom in ("step", "exp_avg", "exp_avg_sq"):
                        out[f"nsvq.adam.{key}.{mom}"] = st[mom]
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        base = {k: v for k, v in state.items() if not k.startswith("nsvq.")}
        super().load_state_dict(base)
        self.codebooks, self.used, self.indices, self._pending_adam = {}, {}, {}, {}
        self.last_update = int(state.get("nsvq.last_update", 0))
        self.replaced = int(state.get("nsvq.replaced", 0))
        for k, v in state.items():
            parts = k.split(".")
            if k.startswith("nsvq.codebook."):
                self.codebooks[parts[2]] = torch.nn.Parameter(torch.as_tensor(v).float())
            elif k.startswith("nsvq.used."):
                self.used[parts[2]] = torch.as_tensor(v).float()
            elif k.startswith("nsvq.index."):
                self.indices[parts[2]] = torch.as_tensor(v).long()
            elif k.startswith("nsvq.adam."):
                self._pending_adam.setdefault(parts[2], {})[parts[3]] = torch.as_tensor(v)
        self._pending_adam = {k: v for k, v in self._pending_adam.items()
                              if {"step", "exp_avg", "exp_avg_sq"} <= set(v)}


# ---------------------------------------------------------------------------- codec
class NSVQCodec(Codec):
    """Bitstream of NSVQ-GS (see the module docstring). Parameters: ``k_scale``,
    ``k_rotation``, ``k_dc``, ``k_sh`` (used only when the model comes without trained
    codebooks), ``entropy_coding`` (default True), ``kmeans_iters``; other method parameters
    are accepted and ignored."""

    id = "nsvqgs"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.k = {key: int(params.get(p, DEFAULT_K[p])) for key, p in VQ_ATTRS.items()}
        self.entropy_coding = bool(params.get("entropy_coding", True))
        self.kmeans_iters = int(params.get("kmeans_iters", 10))

    # ------------------------------------------------------------------ quantization
    def _quantize(self, model: GaussianModel, ctx: CodecContext) -> tuple[dict, dict, str]:
        state = ctx.aux.get(ARTIFACT_KEY) or {}
        dev = model.device
        n = model.num_gaussians
        keys = [k for k in VQ_ATTRS if attr_matrix(model.params, k).shape[1] > 0]
        codebooks, indices, sources = {}, {}, set()
        gen = torch.Generator(device=dev).manual_seed(int(ctx.seed))
        for key in keys:
            x = attr_matrix(model.params, key).detach().float()
            cb_np, idx_np = state.get(f"codebook.{key}"), state.get(f"index.{key}")
            if cb_np is not None and cb_np.ndim == 2 and cb_np.shape[1] == x.shape[1]:
                cb = torch.as_tensor(np.asarray(cb_np, dtype=np.float32), device=dev)
                idx = None
                if idx_np is not None and len(idx_np) == n:
                    idx = torch.as_tensor(np.asarray(idx_np, dtype=np.int64), device=dev)
                    if idx.min() < 0 or idx.max() >= cb.shape[0] or not torch.equal(cb[idx], x):
                        idx = None
                if idx is None:
                    idx = nearest_code(x, cb)
                    sources.add("trained codebooks, re-assigned")
                else:
                    sources.add("trained")
            else:
                cb = kmeans(x, self.k[key], self.kmeans_iters, generator=gen)
                idx = nearest_code(x, cb)
                sources.add("post-hoc k-means")
            codebooks[key], indices[key] = cb, idx
        return codebooks, indices, " + ".join(sorted(sources)) or "none"

    def encode(self, model: GaussianModel, out_dir: str | Path, ctx: CodecContext | None = None) -> dict[str, Any]:
        ctx = ctx or CodecContext()
        require_gaussians(model, "NSVQ-GS")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        n = model.num_gaussians
        codebooks, indices, source = self._quantize(model, ctx)
        methods = None if self.entropy_coding else ["fixed"]

        def floats(a: torch.Tensor) -> np.ndarray | bytes:
            arr = np.ascontiguousarray(a.detach().float().cpu().numpy().astype("<f4"))
            return compress_bytes(arr, element_size=4) if self.entropy_coding else arr

        arrays: dict[str, np.ndarray | bytes] = {
            "means": floats(model.params["means"]),
            "opacities": floats(model.params["opacities"].reshape(n)),
        }
        attrs_meta: dict[str, dict[str, int]] = {}
        index_methods: dict[str, str] = {}
        for key, cb in codebooks.items():
            k, d = int(cb.shape[0]), int(cb.shape[1])
            attrs_meta[key] = {"k": k, "dim": d}
            arrays[f"codebook.{key}"] = floats(cb)
            stream = encode_symbols(indices[key].cpu().numpy(), k, methods=methods)
            arrays[f"index.{key}"] = stream
            index_methods[key] = symbols_method(stream)
        meta = {"format": "nsvqgs", "version": FORMAT_VERSION, "num_gaussians": n, "sh_degree": model.sh_degree,
                "attrs": attrs_meta, "entropy_coding": self.entropy_coding}
        path = out_dir / BITSTREAM_FILE
        size = write_container_set({path: (arrays, meta)})[str(path)]
        components = {name: len(v) if isinstance(v, bytes) else int(v.nbytes) for name, v in arrays.items()}
        components["container_header"] = size - sum(components.values())
        fixed = fixed_width_bytes(n, {k: (v["k"], v["dim"]) for k, v in attrs_meta.items()})
        t0 = time.perf_counter()  # a statistic, not coding: the caller takes it out of encode_seconds
        paper = upstream_zip(model.params["means"], model.params["opacities"], codebooks, indices)
        statistics_seconds = time.perf_counter() - t0
        return {
            "size_bytes": size,
            "components": components,
            "size_bytes_fixed_width": sum(fixed.values()),
            "size_bytes_paper_format": len(paper),
            "size_bytes_paper_format_reason": "upstream's compressed_model.zip of this model, written in memory "
                                              "(float32 ply, fixed-width indices, npy args, pth codebooks, deflated)",
            "statistics_seconds": statistics_seconds,
            "components_fixed_width": fixed,
            "size_bytes_entropy_coded": size if self.entropy_coding else None,
            "index_coding": index_methods,
            "codebook_sizes": {k: v["k"] for k, v in attrs_meta.items()},
            "quantization_source": source,
            "num_gaussians": n,
        }

    def decode(self, in_dir: str | Path, device: str | torch.device = "cpu") -> GaussianModel:
        c = Container(Path(in_dir) / BITSTREAM_FILE)
        c.check_format("nsvqgs", (FORMAT_VERSION,), "NSVQ-GS")
        try:
            n, deg = int(c.meta["num_gaussians"]), int(c.meta["sh_degree"])
            attrs = dict(c.meta["attrs"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise c.error(f"malformed NSVQ-GS metadata ({exc})") from exc
        if n < 1 or not 0 <= deg <= 4:
            raise c.error(f"bad Gaussian count {n} or SH degree {deg}")

        def floats(key: str, shape: tuple[int, ...]) -> torch.Tensor:
            return torch.from_numpy(c.floats(key, shape))

        params: dict[str, torch.Tensor] = {
            "means": floats("means", (n, 3)),
            "opacities": floats("opacities", (n,)),
        }
        expect_dim = {"scales": 3, "quats": 4, "sh0": 3, "shN": 3 * (num_sh_bases(deg) - 1)}
        for key, dim in expect_dim.items():
            if dim == 0:
                params[key] = torch.zeros(n, 0, 3)
                continue
            if key not in attrs:
                raise c.error(f"attribute '{key}' is missing from the metadata")
            try:
                k, d = int(attrs[key]["k"]), int(attrs[key]["dim"])
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                raise c.error(f"malformed metadata of '{key}' ({exc})") from exc
            if d != dim or k < 1:
                raise c.error(f"attribute '{key}' has dim {d} / {k} codes, expected dim {dim}")
            cb = floats(f"codebook.{key}", (k, d))
            stream = c.stream(f"index.{key}")
            idx = torch.from_numpy(decode_symbols(stream, n, k, name=f"{c.name}: array 'index.{key}'"))
            params[key] = matrix_to_param(key, cb[idx], deg)
        return GaussianModel({k: v.to(device) for k, v in params.items()}, sh_degree=deg)


__all__ = ["NSVQStrategy", "NSVQCodec", "nearest_code", "noise_substitute", "kmeans", "attr_matrix", "VQ_ATTRS"]


# ---------------------------------------------------------------------------- method spec
SPEC = MethodSpec(
    id="nsvqgs", kind="train", title="NSVQ-GS: noise-substituted vector quantization", spec="methods/nsvqgs.md",
    strategy=NSVQStrategy, codec=NSVQCodec, order=40,
    params=param_schema(
        DENSIFY_PARAMS, NSVQStrategy.__init__,
        k_scale=(1, None), k_rotation=(1, None), k_dc=(1, None), k_sh=(1, None), reg_start=(0, None),
        vq_start=(0, None), ft_start=(0, None), total_iterations=(1, None), lambda_reg=(0, None),
        prune_every=(1, None), reg_prune_opacity=(0, 1), kmeans_iters=(1, None), kmeans_tol=(0, None),
        codebook_lr_scale=(0, None), dead_threshold=(0, None), dead_fine_until=(0, None),
        dead_fine_every=(1, None), dead_every=(1, None), replace_noise_rel=(0, None), opacity_lr=(0, None),
        init_max_dist2=(1e-12, None),
    ),
    init_from_baseline_at=15_000,
    # the RD sweep: codebook sizes scale / rotation / DC colour / SH rest (strategy + codec
    # params); "k4k" = the README's 4096/4096/1024/1024, "k16k" = the repo figure's 14/12-bit point
    variants={
        "k256": {"k_scale": 256, "k_rotation": 256, "k_dc": 64, "k_sh": 64},
        "k1k": {"k_scale": 1024, "k_rotation": 1024, "k_dc": 256, "k_sh": 256},
        "k4k": {"k_scale": 4096, "k_rotation": 4096, "k_dc": 1024, "k_sh": 1024},
        "k16k": {"k_scale": 16384, "k_rotation": 16384, "k_dc": 4096, "k_sh": 4096},
    },
    default_variant="k4k",
)
