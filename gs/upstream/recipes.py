"""How to build and call each method's upstream code, as data.

The repository and the pinned commit come from the method's deviations file
(``gs/methods/deviations/<id>.yaml``, ``spec.fidelity``); a :class:`Recipe` adds what is needed
to run that code on today's toolchain and with our protocol: source fixes, the CUDA extensions
to build, the training script and its flags, where it writes the trained PLY, and which of our
parameters map to which of its flags. A plug-in method brings its recipe through the
entry-point group ``gs_bench.upstream`` (name = method id, object = a :class:`Recipe`).

Baseline, GNS, ARGP and EDIM are the Inria 3DGS code base (or forks of it with the same
command line): ``python train.py -s SCENE -m OUT --eval`` holds out every 8th image (our
split), ``-i`` names the image folder and ``-r`` the downscale factor; the model of iteration
N is ``OUT/point_cloud/iteration_N/point_cloud.ply``. Upstream schedules are fixed to the 30k
recipe (densification until 15k, ...): a run with fewer ``iterations`` runs the first part of
that schedule, unlike ours, which scales it.

NSVQ-GS trains from scratch like them but writes a bitstream (``compressed_model.zip``), which
the authors' own decoder turns into a PLY (``decoder``). HGSC compresses a trained model
(``codec_args``/``codec_result``: the runner's ``run_upstream_codec``) and calls MPEG's TMC13,
built from its own pinned repository (a :class:`Tool`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

RECIPE_ENTRY_POINT_GROUP = "gs_bench.upstream"


@dataclass(frozen=True)
class SourceFix:
    """A line the upstream code needs at the top of one of its files to build today, or (with
    ``replace``) a text it must change to run at all; each is listed as a deviation."""

    path: str  # relative to the repository root
    line: str  # inserted as the first line when the file does not contain it yet
    why: str = ""
    #: when set: ``line`` is an exact text of the file (once), replaced by this one
    replace: str | None = None


@dataclass(frozen=True)
class Tool:
    """A program the authors' code calls, built from its own pinned repository (HGSC calls
    MPEG's TMC13 ``tmc3``). ``build``: commands run in the tool's checkout, ``{src}`` and
    ``{build}`` filled in; ``binary``: the program, relative to the build folder; ``install``:
    where the authors' code expects it, relative to their checkout."""

    name: str
    repository: str
    commit: str
    build: tuple[tuple[str, ...], ...]
    binary: str
    install: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """How one method's upstream repository is built and run (see the module docstring)."""

    method: str
    #: CUDA extensions built with ``pip install --no-build-isolation`` (paths in the repository)
    extensions: tuple[str, ...] = ()
    fixes: tuple[SourceFix, ...] = ()
    #: extensions the code can run without (a failed build is logged, not fatal)
    optional_extensions: tuple[str, ...] = ()
    #: zip archives in the repository unpacked in place before the fixes (GNS ships its
    #: rasterizer that way)
    unpack: tuple[str, ...] = ()
    script: str = "train.py"
    #: the trained model (a codec's: its bitstream), relative to the output folder;
    #: ``{iterations}`` is filled in
    output: str = "point_cloud/iteration_{iterations}/point_cloud.ply"
    #: a codec's decoder: our adapter script (a file next to this module) that decodes
    #: ``output`` with the authors' own code into a standard 3DGS PLY (see decode_nsvqgs.py)
    decoder: str | None = None
    #: the authors' run length for a config's ``iterations`` when it is not that number
    #: (NSVQ-GS trains 45k where the baseline trains 30k); raises ValueError where their
    #: hard-coded schedule cannot follow
    run_length: Callable[[int, Mapping[str, Any]], int] | None = None
    #: the flag that sets the run length where the script has its own (``--iterations`` is
    #: passed as well)
    length_flag: str | None = None
    #: a further condition on the parameters their code can run (beyond ``upstream_values``)
    condition: Callable[[Mapping[str, Any]], bool] | None = None
    #: programs built from their own repositories before the extensions (HGSC: TMC13)
    tools: tuple[Tool, ...] = ()
    #: a codec over a trained model (HGSC): the flags of its script after the input model and
    #: cameras, from the run's parameters and the checkout (None for a training method); then
    #: ``output`` is the decoded model beside the input, and ``codec_result(stage, work,
    #: output text)`` reads its sizes and seconds
    codec_args: Callable[[Mapping[str, Any], Path], list[str]] | None = None
    codec_result: Callable[[Path, Path, str], dict[str, Any]] | None = None
    #: our parameter -> upstream flag (the value is passed as is)
    flags: Mapping[str, str] = field(default_factory=dict)
    #: parameters whose value upstream's code fixes: a variant that sets another value (a
    #: behaviour only our code has) has no upstream run
    upstream_values: Mapping[str, Any] = field(default_factory=dict)
    #: further flags computed from the run's parameters (e.g. GNS's final budget)
    extra_args: Callable[[Mapping[str, Any]], list[str]] | None = None
    #: False only for code that needs no CUDA (test doubles); real upstream code does
    needs_cuda: bool = True
    #: flags every run passes (``--disable_viewer``: concurrent runs cannot share the viewer's port)
    fixed_args: tuple[str, ...] = ()
    #: the flag that names the output folder (ARGP's train.py takes it from ``--model_name``
    #: and overwrites ``-m`` with it)
    output_flag: str = "-m"
    #: submodule path -> (repository, commit), where the commit the repository records cannot
    #: run its own code (listed as a deviation of the runner)
    submodule_overrides: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def supports(self, params: Mapping[str, Any]) -> bool:
        """Whether upstream's code can run this variant (no parameter set off its fixed value)."""
        return (all(params.get(k, v) == v for k, v in self.upstream_values.items())
                and (self.condition is None or self.condition(params)))

    def length(self, iterations: int, params: Mapping[str, Any]) -> int:
        """Iterations of the authors' run for a config's ``iterations``."""
        return int(self.run_length(int(iterations), params)) if self.run_length else int(iterations)

    def args(self, params: Mapping[str, Any]) -> list[str]:
        """The method's own flags for a run with ``params``."""
        out = []
        for name, flag in self.flags.items():
            if params.get(name) is not None:
                out += [flag, str(params[name])]
        return out + list(self.fixed_args) + (self.extra_args(params) if self.extra_args else [])


# ------------------------------------------------------------------------------ the Inria code base
RASTERIZER = "submodules/diff-gaussian-rasterization"
#: Build fixes for diff-gaussian-rasterization on current compilers (gcc 13+ and nvcc 13 no
#: longer pull <cstdint> in transitively); simple-knn revisions before <cfloat> was added.
INRIA_FIXES = (
    SourceFix(f"{RASTERIZER}/cuda_rasterizer/rasterizer_impl.h", "#include <cstdint>",
              "uint32_t/uint64_t without <cstdint> fail with nvcc 13"),
    SourceFix("submodules/simple-knn/simple_knn.cu", "#include <cfloat>", "FLT_MAX without <cfloat>"),
)
INRIA_EXTENSIONS = (RASTERIZER, "submodules/simple-knn")
#: the authors' environments install fused-ssim; their train.py falls back to a PyTorch SSIM
#: without it (slower, same values), so a failed build of it is logged, not fatal
FUSED_SSIM = ("submodules/fused-ssim",)
#: concurrent runs cannot all bind the viewer's port (6009)
NO_VIEWER = ("--disable_viewer",)
#: rv_project records diff-gaussian-rasterization 59f5f77 (Aug 2023), but its renderer passes
#: ``antialiasing=`` and takes three outputs: the rasterizer of the Inria commit it forks (dr_aa)
INRIA_DR_AA = ("https://github.com/graphdeco-inria/diff-gaussian-rasterization",
               "9c5c2028f6fbee2be239bc4c9421ff894fe4fbe0")
#: wandb is imported and initialised unconditionally by rv_project's train.py; a stand-in whose
#: every call does nothing keeps an offline run from needing the package or an account
NO_WANDB = ("class _NoWandb:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n\n\n"
            "wandb = _NoWandb()  # GS Bench: wandb logging off")


def _gns_budget(params: Mapping[str, Any]) -> list[str]:
    """``--final_budget B`` with B chosen as our GNS chooses it (budget > paper_budget x scale >
    budget_fraction x the upstream baseline's final count)."""
    if params.get("budget") is not None:
        b = int(params["budget"])
    elif params.get("paper_budget_scale") is not None:
        if params.get("paper_budget") is None:
            raise ValueError("gns upstream: paper_budget_scale given but this scene has no paper_budget preset")
        b = int(round(params["paper_budget"] * params["paper_budget_scale"]))
    elif params.get("budget_fraction") is not None and params.get("baseline_count") is not None:
        b = int(round(params["budget_fraction"] * int(params["baseline_count"])))
    else:
        return []  # upstream's own default budget (600k)
    return ["--final_budget", str(max(b, 1))]


def _value(params: Mapping[str, Any], name: str, default: Any) -> str:
    """A flag value: the run's parameter, or our default where the params leave it out (the
    authors' scripts have other defaults than their READMEs' commands)."""
    return str(params[name] if params.get(name) is not None else default)


def _nsvq_length(iterations: int, params: Mapping[str, Any]) -> int:
    """NSVQ-GS's run: ``total_iterations`` (45k) in the 30k recipe. Its code hard-codes the
    rest of the schedule (dead codes to 22k, a 2k fine-tune), so only the full length runs."""
    if iterations != 30_000:
        raise ValueError(f"nsvqgs upstream: the authors' schedule is fixed to the 30k recipe (VQ from 20k, "
                         f"dead-code checks to 22k, a 2k fine-tune); run it with iterations: 30000, not {iterations}")
    return int(params.get("total_iterations", 45_000))


def _nsvq_args(params: Mapping[str, Any]) -> list[str]:
    """The README's flags with this run's values (the script's own defaults differ, e.g. VQ
    from 30k and no opacity regularisation); pruning
    ends where VQ starts, as in the README (``--max_prune_iter 20000 --vq_start_iter 20000``)."""
    vq_start = _value(params, "vq_start", 20_000)
    return ["--vq_ncls", _value(params, "k_scale", 4096), "--vq_ncls_dc", _value(params, "k_dc", 1024),
            "--vq_ncls_sh", _value(params, "k_sh", 1024), "--vq_start_iter", vq_start, "--max_prune_iter", vq_start,
            "--lambda_reg", _value(params, "lambda_reg", 1e-7), "--cb_lr_times", _value(params, "codebook_lr_scale", 1.0)]


#: MPEG G-PCC reference software, release-v23.0-rc2: HGSC's RAHT config sets ``integerHaar``,
#: which TMC13 knows from v23 on (its binary is named tmc3_v23); one build serves both the
#: geometry and the attribute calls. cmake 4 needs the policy floor for its old CMakeLists.
TMC13 = Tool("tmc13", "https://github.com/MPEGGroup/mpeg-pcc-tmc13", "a3d15c5e73bae20fbe2ec79be60994038a66dc8d",
             build=(("cmake", "-S", "{src}", "-B", "{build}", "-DCMAKE_BUILD_TYPE=Release",
                     "-DCMAKE_POLICY_VERSION_MINIMUM=3.5"),
                    ("cmake", "--build", "{build}", "--parallel", "8")),
             binary="tmc3/tmc3", install=("comodules/tmc/linux/tmc3", "comodules/gpcc_reflectance/tmc3_v23"))


def _hgsc_args(params: Mapping[str, Any], src: Path) -> list[str]:
    """train.py's flags with this run's values (our defaults are the paper's big-scene
    setting: run_big_scenes.py); TMC13 as installed."""
    return ["--xyz_qp", _value(params, "xyz_bits", 15), "--max_points_per_block", _value(params, "block_size", 512),
            "--percentage", str(int(float(_value(params, "prune_percent", 66)))),
            "--lod_bit_depth", _value(params, "lod_bits_uv", 4), _value(params, "lod_bits", 8),
            "--gpcc_path", str((src / TMC13.install[0]).resolve())]


def _hgsc_result(stage: Path, work: Path, output: str) -> dict[str, Any]:
    """The bytes of HGSC's three streams and its seconds. Its own ``size_all`` is not a size:
    the anchor attributes' bytes overwrite the geometry's and the LoD streams are added x8
    (train.py), so the geometry comes from its file and the LoD bytes from size_all."""
    geometry = sorted(work.glob("output/*/quant.bin"))
    anchors = re.findall(r"Reflectances bitstream size: (\d+)", output)
    report = dict(re.findall(r"^(\w+): ([-+.\deE]+)\s*$", (stage / "output.txt").read_text(), re.M))
    if not geometry or not anchors or "size_all" not in report:
        raise ValueError("hgsc upstream: its geometry stream, anchor size line or output.txt size_all is missing")
    g, a = geometry[0].stat().st_size, int(anchors[-1])
    lod = (float(report["size_all"]) - a) / 8
    total = int(round(g + a + lod))
    return {
        "size_bytes": total,
        "size_bytes_reason": "the authors' three streams: G-PCC geometry (quant.bin) + RAHT anchor attributes (TMC13) "
                             "+ zlib LoD residuals; side information (ranges, counts) is not counted, as upstream",
        "size_bytes_paper_format": total, "size_bytes_paper_format_reason": "the authors' own streams",
        "components": {"geometry_gpcc": g, "anchor_attributes_raht": a, "lod_residuals_zlib": int(round(lod))},
        # their 56 per-column TMC13 files also carry the anchors' positions, already known from the
        # geometry stream (methods/hgsc.md section 3 counts the reflectance part only)
        "anchor_attribute_files_bytes": sum(f.stat().st_size for f in work.glob("exp/*.bin")),
        "reported_size_all": float(report["size_all"]),
        "reported_size_all_note": "train.py's size_all: anchor bytes overwrite the geometry bytes, LoD bytes counted x8",
        "encode_seconds": float(report.get("encoding_time_all", "nan")),
        "decode_seconds": float(report.get("decoding_time_all", "nan")),
        "decode_seconds_note": "the authors' decoding_time_all (their G-PCC geometry decode is timed before it runs)",
    }


RECIPES: dict[str, Recipe] = {
    "3dgs": Recipe("3dgs", INRIA_EXTENSIONS, INRIA_FIXES, optional_extensions=FUSED_SSIM, fixed_args=NO_VIEWER,
                   upstream_values={"refine_before_step": True}),
    # GNS ships its Speedy-Splat rasterizer, simple-knn and fused-ssim (required by its train.py)
    # as submodules-speedy.zip (its README: "extract the compressed package"). The rasterizer
    # also needs <cstdint> in auxiliary.h and CUDA 13 removed cub::Max. GNS has no viewer.
    "gns": Recipe("gns", (*INRIA_EXTENSIONS, *FUSED_SSIM),
                  (*INRIA_FIXES,
                   SourceFix(f"{RASTERIZER}/cuda_rasterizer/auxiliary.h", "#include <cstdint>",
                             "uint32_t in adam.cu without <cstdint> fails with nvcc 13"),
                   SourceFix(f"{RASTERIZER}/cuda_rasterizer/forward.cu", "#include <cuda/functional>",
                             "cuda::maximum replaces cub::Max"),
                   SourceFix(f"{RASTERIZER}/cuda_rasterizer/forward.cu", "Reduce(last_contributor, cub::Max())",
                             "CUDA 13 removed cub::Max", replace="Reduce(last_contributor, cuda::maximum<>())")),
                  unpack=("submodules-speedy.zip",), extra_args=_gns_budget,
                  upstream_values={"sparse_steps": True}),
    # flags as named in ARGP's arguments/__init__.py at the pinned commit (ctprune_ratio,
    # tp_prune_level, recover_level); its rasterizer is a modified diff-gaussian-rasterization
    # (recovery-score backward) kept in the repository, simple-knn a git submodule
    "argp": Recipe("argp", INRIA_EXTENSIONS, INRIA_FIXES, fixed_args=NO_VIEWER, output_flag="--model_name",
                   flags={"prune_quantile": "--ctprune_ratio", "freeze_quantile": "--tp_prune_level",
                          "recover_ratio": "--recover_level"},
                   upstream_values={"freeze_gradients": False}),
    # EDIM (rv_project, branch skViewer): training only. The "Decomp" variants are a
    # post-training cut by convert_ply.py (--rm_sk --threshold tau) whose input/output arguments
    # are not pinned yet, so only tag_gradprune runs upstream. As committed it cannot run: its
    # first clone reads an undefined self.train_sk (the clone's importance stays trainable, as
    # the parent's), it needs wandb, and its recorded rasterizer predates its renderer.
    "edim": Recipe("edim", INRIA_EXTENSIONS,
                   (*INRIA_FIXES,
                    SourceFix("scene/gaussian_model.py", "nn.Parameter(new_s_k, requires_grad=self.train_sk)",
                              "self.train_sk is never set: the first clone raises AttributeError",
                              replace="nn.Parameter(new_s_k, requires_grad=True)"),
                    SourceFix("train.py", "import wandb", "wandb logging needs the package and an account",
                              replace=NO_WANDB)),
                   optional_extensions=FUSED_SSIM, fixed_args=NO_VIEWER,
                   submodule_overrides={RASTERIZER: INRIA_DR_AA},
                   upstream_values={"final_prune_threshold": None, "clone_opacity": "logit", "prune_on_logit": False,
                                    "threshold_over_seen_only": False, "bake_importance": False,
                                    "world_size_limit": 0.1}),
    # NSVQ-GS (a codec trained from scratch): the README's command (sh, dc, rot and scale
    # quantized, opacity regularisation, fine-tune). One codebook size for scale and rotation
    # (--vq_ncls), so only variants with k_scale == k_rotation run. Its train_newvq.py has no
    # viewer flag (the viewer is never started) and writes compressed_model.zip, which
    # decode_nsvqgs.py decodes with the authors' GaussianModel.load_ply(load_quant=True).
    "nsvqgs": Recipe("nsvqgs", INRIA_EXTENSIONS,
                     (*INRIA_FIXES,
                      SourceFix("scene/nsvq.py", "bitarray(list(assignments.cpu().numpy().flatten()))",
                                "bitarray takes Python ints or bools, not numpy 2's numpy.bool: saving the indices "
                                "fails at the first save",
                                replace="bitarray(assignments.cpu().numpy().flatten().astype(bool).tolist())")),
                     script="train_newvq.py",
                     output="point_cloud/iteration_{iterations}/compressed_model.zip", decoder="decode_nsvqgs.py",
                     run_length=_nsvq_length, length_flag="--total_iterations",
                     condition=lambda p: p.get("k_scale", 4096) == p.get("k_rotation", 4096),
                     fixed_args=("--quant_params", "sh", "dc", "rot", "scale", "--opacity_reg", "--fine_tune"),
                     extra_args=_nsvq_args,
                     upstream_values={"reg_start": 15_000, "ft_start": 43_000, "prune_every": 1000,
                                      "reg_prune_opacity": 0.005, "kmeans_iters": 10, "kmeans_tol": 1e-4,
                                      "dead_threshold": 0.01, "dead_fine_until": 22_000, "dead_fine_every": 100,
                                      "dead_every": 500, "fresh_dead_codes": False, "opacity_lr": 0.05,
                                      "init_max_dist2": 4.0, "visible_only": True, "fine_tune": True}),
    # HGSC (a codec over a trained model): train.py takes the model's point_cloud.ply and the
    # cameras.json of its training run (every camera, test views included: the significance
    # leak we do not repeat in ours), codes geometry and anchor attributes with TMC13 and the LoD
    # residuals with zlib, and decodes in the same process into rec.ply. Its rasterizer (with
    # the significance kernel) and simple-knn live in the repository; its Linux TMC13 binaries
    # are not in the repository, so TMC13 is built from source. open3d is imported but unused
    # (no wheel for current Pythons), numpy 2 removed np.int.
    "hgsc": Recipe("hgsc", INRIA_EXTENSIONS,
                   (*INRIA_FIXES,
                    SourceFix("comodules/kd_tree.py", "import open3d as o3d", "open3d is imported but never used",
                              replace="o3d = None  # GS Bench: open3d is unused"),
                    SourceFix("comodules/gpcc_reflectance/data_in_out.py", "import open3d",
                              "open3d is imported but never used", replace="open3d = None  # GS Bench: unused"),
                    SourceFix("comodules/gpcc_reflectance/encode_with_gpcc_reflectance.py", ".astype(np.int)",
                              "numpy 1.24 removed np.int", replace=".astype(np.int64)"),
                    SourceFix("comodules/encode.py", "from arithmetic_compressor import AECompressor\n"
                              "from arithmetic_compressor.models import BinaryPPM",
                              "arithmetic-compressor serves a coder train.py never calls",
                              replace="AECompressor = BinaryPPM = None  # GS Bench: the unused coder's package")),
                   output="rec.ply", tools=(TMC13,), codec_args=_hgsc_args, codec_result=_hgsc_result,
                   condition=lambda p: float(_value(p, "prune_percent", 66)).is_integer(),  # an int flag
                   upstream_values={"volume_quantile": 0.8, "volume_exponent": 0.01, "lod_block_size": 256,
                                    "anchor_fraction": 0.10, "lod1_fraction": 0.33, "anchor_bits": 15}),
}


def recipes() -> dict[str, Recipe]:
    """Method id -> recipe: the built-in ones and those of installed plug-ins."""
    from gs.io import load_plugins

    out = dict(RECIPES)
    out.update({name: recipe for name, recipe, _ in load_plugins(RECIPE_ENTRY_POINT_GROUP, Recipe, "upstream recipe")})
    return out


def recipe_for(method: str) -> Recipe | None:
    return recipes().get(method)
