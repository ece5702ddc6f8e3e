"""Config -> Snakemake targets: the pure-Python half of ``rules/common.smk``.

Everything here is plain Python over the validated config dict and the method registry, so it
is fast (no torch import) and unit-testable without Snakemake.

Results layout (every file is a target on its own)::

    {results}/{dataset}/{scene}/scene.json                       prepared scene (protocol, inputs)
    {results}/{dataset}/{scene}/{method}/{variant}/              a training method's run
        point_cloud.ply  train_stats.json  checkpoints/  metrics.json  renders/
    {results}/{dataset}/{scene}/{method}/{variant}/codec/        a trained codec's bitstream
        bitstream/  point_cloud.ply (decoded)  codec_stats.json
    {results}/{dataset}/{scene}/{codec}@{base}/{cvariant}@{bvariant}/   a codec over a trained model
        bitstream/  point_cloud.ply (decoded)  codec_stats.json  metrics.json  renders/
    {results}/tables/  results.csv, results.html, {dataset}_survey.csv, {dataset}.md/.tex/.html,
                       {dataset}_bd.csv/.md/.html, bd_summary.csv/.md/.html (Bjontegaard deltas)
    {results}/plots/   {dataset}_rd.png/.svg
    {results}/strips/  {dataset}/{scene}.png
    {results}/provenance.json, provenance.html

``@`` separates a codec from the trained model it compresses: ``hgsc@gns/q8@default`` is HGSC
at its ``q8`` rate point over GNS at its ``default`` variant. Method ids and variant names never
contain ``/``, ``@`` or ``~`` (checked), so every path parses one way.

Seeds: ``seeds: [0, 1, 2]`` runs every training job once per seed, each its own DAG branch,
with everything downstream of it (codecs over it, evaluation). The run at the config's
``seed`` (default 0) keeps the paths above; another seed N appends ``~seedN`` to the variant
folder: ``gns/15pct~seed1/``, ``hgsc@gns/q8@15pct~seed1/``, ``nsvqgs/k4k~seed2/codec/``. So a
single seed (the default) changes nothing, and adding seeds later reuses the runs already done.
Metrics JSONs record the plain variant and the seed; tables average over seeds.

Implementations: ``implementations: [ours, upstream]`` adds, for every training run whose
method has an upstream recipe (:mod:`gs.upstream.recipes`) that can run its variant, the same
run trained by the authors' code in the method folder ``{method}~upstream``:
``gns~upstream/15pct/``, ``gns~upstream/15pct~seed1/``. ``~upstream`` ends a method folder,
``~seed<N>`` a variant folder, so both parse one way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from gs.io import archive_name, archive_stem  # noqa: F401  (archive_stem: used by rules/common.smk)
from gs.upstream import UPSTREAM, UPSTREAM_SUFFIX, split_implementation, upstream_id  # noqa: F401

NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_NAME = re.compile(NAME_RE + r"\Z")
SEP = "@"
SEED_SEP = "~seed"  # variant folder of an extra seed: "<variant>~seed<N>"
SEED_RE = r"(?:~seed[0-9]+)?"
_SEED_SUFFIX = re.compile(r"~seed([0-9]+)\Z")
PROTOCOL_KEYS = ("images", "resolution", "max_side", "test_every", "white_background")
RD_METRICS = ("psnr", "ssim", "lpips")


class ConfigError(ValueError):
    """A config that passed the schema but names something that does not exist."""


# ------------------------------------------------------------------------------ registry access
def _registry(methods: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    if methods is not None:
        return methods
    from gs.methods.registry import METHODS

    return METHODS


def train_methods(methods: Mapping[str, Any] | None = None) -> list[str]:
    return [m for m, s in _registry(methods).items() if s.kind == "train"]


def codec_methods(methods: Mapping[str, Any] | None = None) -> list[str]:
    """Post-training codecs (``kind == "codec"``): they compress any trained model."""
    return [m for m, s in _registry(methods).items() if s.kind == "codec"]


def trained_codecs(methods: Mapping[str, Any] | None = None) -> list[str]:
    """Training methods that also bring a codec (their own bitstream, e.g. NSVQ-GS)."""
    return [m for m, s in _registry(methods).items() if s.kind == "train" and s.codec]


# ------------------------------------------------------------------------------ run identity
@dataclass(frozen=True)
class Run:
    """One evaluated model: ``method``/``variant`` as they appear in tables; ``seed`` None is
    the config's ``seed`` (plain paths), an int is an extra seed (``~seed<N>`` folders)."""

    dataset: str
    scene: str
    method: str
    variant: str
    seed: int | None = None

    @property
    def is_codec_over_base(self) -> bool:
        return SEP in self.method

    @property
    def variant_dir(self) -> str:
        """The variant's folder name: the variant, ``~seed<N>`` appended for an extra seed."""
        return self.variant if self.seed is None else f"{self.variant}{SEED_SEP}{self.seed}"

    def parts(self) -> tuple[str, str, str | None, str | None]:
        """(method, variant, base, base_variant); base is None for a training method."""
        return split_run(self.method, self.variant)

    def dir(self, results: str | Path = "results") -> str:
        return f"{results}/{self.dataset}/{self.scene}/{self.method}/{self.variant_dir}"

    def base_run(self) -> "Run | None":
        """The trained model a codec over a base compresses (same scene and seed)."""
        _, _, base, bvariant = self.parts()
        return None if base is None else Run(self.dataset, self.scene, base, bvariant, self.seed)

    @classmethod
    def from_dir(cls, dataset: str, scene: str, method: str, variant_dir: str) -> "Run":
        """The run whose folder is ``{dataset}/{scene}/{method}/{variant_dir}``."""
        variant, seed = split_seed(variant_dir)
        return cls(dataset, scene, method, variant, seed)


def split_seed(variant_dir: str) -> tuple[str, int | None]:
    """``"15pct~seed1"`` -> ``("15pct", 1)``; ``"15pct"`` -> ``("15pct", None)`` (the config's seed)."""
    m = _SEED_SUFFIX.search(variant_dir)
    if not m:
        return variant_dir, None
    return variant_dir[: m.start()], int(m.group(1))


def seeds(config: Mapping[str, Any]) -> list[int]:
    """The training seeds: ``seeds`` when given, else ``[seed]``."""
    out = list(config.get("seeds") or [config.get("seed", 0)])
    if len(set(out)) != len(out):
        raise ConfigError(f"seeds: {out} lists a seed twice")
    return out


def primary_seed(config: Mapping[str, Any]) -> int:
    """The seed shown where one run per method is enough (comparison strips): the config's
    ``seed`` when it is one of ``seeds``, else the first of them."""
    base, all_seeds = config.get("seed", 0), seeds(config)
    return base if base in all_seeds else all_seeds[0]


def run_seed(config: Mapping[str, Any], variant_dir: str) -> int:
    """The seed a job runs with, from its variant folder name (``~seed<N>`` or the config's)."""
    seed = split_seed(variant_dir)[1]
    return config.get("seed", 0) if seed is None else seed


def join_run(codec: str, cvariant: str, base: str, bvariant: str) -> tuple[str, str]:
    return f"{codec}{SEP}{base}", f"{cvariant}{SEP}{bvariant}"


def split_run(method: str, variant: str) -> tuple[str, str, str | None, str | None]:
    if SEP not in method:
        return method, variant, None, None
    codec, base = method.split(SEP, 1)
    if SEP not in variant:
        raise ValueError(f"run '{method}/{variant}': a codec over a base needs variant 'cvariant@bvariant'")
    cvariant, bvariant = variant.split(SEP, 1)
    return codec, cvariant, base, bvariant


# ------------------------------------------------------------------------------ method selection
def _pick_evenly(names: list[str], n: int) -> list[str]:
    if n >= len(names):
        return list(names)
    if n == 1:
        return [names[0]]
    idx = sorted({round(i * (len(names) - 1) / (n - 1)) for i in range(n)})
    return [names[i] for i in idx]


def select_variants(method: str, spec: Any, choice: Any) -> list[str]:
    """Variants named by the config: a list, ``all``, ``default``, or a number N (N rate points
    spread evenly over the method's sweep, in registry order). ``all`` and N take the rate points
    only, not the spec's ``diagnostics``; a list may name any variant."""
    names = [v for v in spec.variants if v not in getattr(spec, "diagnostics", ())]  # the RD sweep
    if choice is None or choice == "default":
        out = [spec.default_variant]
    elif choice == "all":
        out = names
    elif isinstance(choice, int) and not isinstance(choice, bool):
        out = _pick_evenly(names, max(1, choice))
    elif isinstance(choice, str):
        out = [choice]
    else:
        out = list(choice)
    unknown = [v for v in out if v not in spec.variants]
    if unknown:
        raise ConfigError(f"methods.{method}.variants: unknown variant(s) {unknown} "
                          f"(registered: {list(spec.variants)})")
    return out


def selected_methods(config: Mapping[str, Any], methods: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Method id -> its config block (``variants``, ``bases``, ``params``), registry order.

    ``methods: all`` (or no ``methods`` key) selects every registered method at its default
    variant; a mapping selects the methods it names (``enabled: false`` switches one off).
    """
    reg = _registry(methods)
    sel = config.get("methods", "all")
    if sel is None or sel == "all":
        sel = {m: {} for m in reg}
    unknown = [m for m in sel if m not in reg]
    if unknown:
        raise ConfigError(f"methods: unknown method(s) {unknown} (registered: {sorted(reg)})")
    out = {}
    for m in reg:  # registry order keeps tables stable
        if m in sel and (sel[m] or {}).get("enabled", True):
            out[m] = dict(sel[m] or {})
    for m, spec in reg.items():
        bad = [n for n in [m, *spec.variants] if not _NAME.match(n)]
        if bad:
            raise ConfigError(f"method '{m}': ids and variant names must match {NAME_RE} (got {bad})")
    if not out:
        raise ConfigError("methods: no method selected (an empty mapping, or every method has enabled: false); "
                          f"name at least one of {sorted(reg)}, or write 'methods: all'")
    for m, block in out.items():  # types, ranges and names of the params, before any job runs
        try:
            reg[m].params_for(reg[m].default_variant, overrides=block.get("params") or {})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return out


def codec_bases(config: Mapping[str, Any], codec: str, block: Mapping[str, Any],
                methods: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(base method, base variant) pairs a codec runs over; ``bases`` entries are ``method`` (its
    default variant) or ``method/variant``; default: the baseline's default variant."""
    reg = _registry(methods)
    trains = train_methods(reg)
    bases = block.get("bases") or [trains[0]]
    out = []
    for b in bases:
        base, _, bvariant = b.partition("/")
        if base not in trains:
            raise ConfigError(f"methods.{codec}.bases: '{base}' is not a training method (have: {trains})")
        bvariant = bvariant or reg[base].default_variant
        if bvariant not in reg[base].variants:
            raise ConfigError(f"methods.{codec}.bases: '{base}' has no variant '{bvariant}'")
        out.append((base, bvariant))
    return out


# ------------------------------------------------------------------------------ datasets
def datasets(config: Mapping[str, Any]) -> list[str]:
    return list(config.get("datasets") or {})


def scenes(config: Mapping[str, Any], dataset: str) -> list[str]:
    """The dataset's scenes, narrowed to ``only_scenes`` when the config gives it (one scene of
    a preset: ``--config only_scenes=[fern]``)."""
    sc = config["datasets"][dataset].get("scenes") or {}
    names = list(sc)
    only = config.get("only_scenes")
    return names if only is None else [n for n in names if n in only]


def check_scene_selection(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` (one line) when ``only_scenes`` names a scene no dataset has."""
    only = config.get("only_scenes")
    if only is None:
        return
    have = [s for d in datasets(config) for s in (config["datasets"][d].get("scenes") or {})]
    missing = [s for s in only if s not in have]
    if missing or not only:
        raise ConfigError(f"only_scenes: {missing or only} "
                          + ("not among the configured scenes" if missing else "selects nothing") + f" (have: {have})")


def all_scenes(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(d, s) for d in datasets(config) for s in scenes(config, d)]


def scene_block(config: Mapping[str, Any], dataset: str, scene: str) -> dict[str, Any]:
    sc = config["datasets"][dataset].get("scenes") or {}
    if scene not in sc:
        raise ConfigError(f"datasets.{dataset}: no scene '{scene}' (have: {list(sc)})")
    return dict(sc[scene] or {}) if isinstance(sc, Mapping) else {}


def scene_protocol(config: Mapping[str, Any], dataset: str, scene: str) -> dict[str, Any]:
    """Keyword arguments for ``gs.data.load_scene``: scene <- dataset <- top level."""
    ds, sc = config["datasets"][dataset], scene_block(config, dataset, scene)
    out = {"images": None, "resolution": -1, "max_side": 1600, "test_every": 8, "white_background": None}
    for src in (config, ds, sc):
        out.update({k: src[k] for k in PROTOCOL_KEYS if k in src})
    return out


def archive_file(ds: Mapping[str, Any]) -> str:
    if ds.get("archive"):
        return ds["archive"]
    try:
        return archive_name(ds["url"])
    except ValueError as e:
        raise ConfigError(str(e)) from e


def dataset_archives(ds: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The archives of a download dataset: its ``archives`` list (each with the scenes it holds),
    or the one ``url`` holding every scene (``scenes`` None)."""
    if ds.get("archives"):
        return [{**a, "file": archive_file(a)} for a in ds["archives"]]
    return [{"url": ds["url"], "sha256": ds.get("sha256"), "subdir": ds.get("subdir"), "file": archive_file(ds),
             "scenes": None}]


def scene_archive(config: Mapping[str, Any], dataset: str, scene: str) -> dict[str, Any]:
    """The archive of a download dataset that holds ``scene``."""
    archives = dataset_archives(config["datasets"][dataset])
    for a in archives:
        if a["scenes"] is None or scene in a["scenes"]:
            return a
    held = "; ".join(f"{a['file']}: {', '.join(a['scenes'])}" for a in archives)
    raise ConfigError(f"datasets.{dataset}: scene '{scene}' is in none of its archives ({held})")



def downloads(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Archive file name -> {url, sha256} for every archive a selected scene needs (datasets
    may share one; a dataset of several archives needs only those holding its scenes)."""
    out: dict[str, dict[str, Any]] = {}
    for d, s in all_scenes(config):
        if config["datasets"][d].get("source") != "download":
            continue
        a = scene_archive(config, d, s)
        entry = {"url": a["url"], "sha256": a.get("sha256")}
        if out.get(a["file"], entry) != entry:
            raise ConfigError(f"datasets.{d}: archive '{a['file']}' is given with two different urls/sha256")
        out[a["file"]] = entry
    return out


def scene_location(config: Mapping[str, Any], dataset: str, scene: str) -> tuple[str, str | None]:
    """(path of the scene folder, path of the folder a rule must produce first or None)."""
    ds, sc = config["datasets"][dataset], scene_block(config, dataset, scene)
    data_dir = config.get("data_dir", ".data")
    src = ds.get("source")
    if src == "synthetic":
        path = f"{data_dir}/generated/{dataset}/{scene}"
        return path, path
    if src == "download":
        archive = scene_archive(config, dataset, scene)
        root = f"{data_dir}/extracted/{archive_stem(archive['file'])}"
        sub = archive.get("subdir") or ds.get("subdir") or ""
        path = sc.get("path") or "/".join(p for p in (root, sub, scene) if p)
        return path, root
    if src == "local":
        if sc.get("path"):
            return str(sc["path"]), None
        root = ds.get("root") or config.get("local_root")
        if not root:
            raise ConfigError(f"datasets.{dataset}: no folder of scenes given; run with "
                              f"--config local_root=/path/to/scenes (or set 'root' or a 'path' per scene)")
        return f"{root}/{scene}", None
    raise ConfigError(f"datasets.{dataset}.source: unknown source '{src}'")


def check_scene_locations(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` (one line) when a scene's source cannot be located (e.g. a
    local dataset without a folder), before any job runs."""
    for dataset, scene in all_scenes(config):
        scene_location(config, dataset, scene)
        ds = config["datasets"][dataset]
        root = ds.get("root") or config.get("local_root")
        if ds.get("source") == "local" and not scene_block(config, dataset, scene).get("path") \
                and not Path(root).is_dir():
            raise ConfigError(f"datasets.{dataset}: the scenes folder '{root}' does not exist; run with "
                              f"--config local_root=/path/to/scenes")


def generate_params(config: Mapping[str, Any], dataset: str, scene: str) -> dict[str, Any]:
    ds, sc = config["datasets"][dataset], scene_block(config, dataset, scene)
    return {**(ds.get("generate") or {}), **(sc.get("generate") or {})}


# ------------------------------------------------------------------------------ runs and targets
def runs(config: Mapping[str, Any], methods: Mapping[str, Any] | None = None) -> list[Run]:
    """Every (dataset, scene, method, variant, seed) the config asks for, codecs over bases
    included, seed by seed (the config's seed first when it is among ``seeds``; a method's own
    ``seeds`` replace the config's for its runs)."""
    reg = _registry(methods)
    sel = selected_methods(config, reg)
    base_seed = config.get("seed", 0)
    out: list[Run] = []
    for d, s in all_scenes(config):
        for m, block in sel.items():
            spec = reg[m]
            variants = select_variants(m, spec, block.get("variants", config.get("default_variants")))
            for k in [None if k == base_seed else k for k in block.get("seeds") or seeds(config)]:
                if spec.kind == "train":
                    out += [Run(d, s, m, v, k) for v in variants]
                else:
                    for base, bvariant in codec_bases(config, m, block, reg):
                        for v in variants:
                            out.append(Run(d, s, *join_run(m, v, base, bvariant), k))
    out = _with_implementations(config, out, reg)
    seen, uniq = set(), []
    for r in out:
        if r not in seen:
            seen.add(r)
            uniq.append(r)
    return uniq


def implementations(config: Mapping[str, Any], method: str | None = None) -> list[str]:
    """The implementations to run: ``ours`` (the default) and/or ``upstream``; for ``method``,
    its block's own ``implementations`` when it gives them (e.g. the baseline ours only, where
    only a codec is compared with the authors' code)."""
    blocks = _method_blocks(config)
    return list((blocks.get(method) or {}).get("implementations") or config.get("implementations") or ["ours"])


def uses_upstream(config: Mapping[str, Any]) -> bool:
    """Whether any run of the config is trained or coded by the authors' code."""
    return any(UPSTREAM in implementations(config, m) for m in (None, *_method_blocks(config)))


def _method_blocks(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The config's method blocks as written (``methods: all`` has none)."""
    methods = config.get("methods")
    return methods if isinstance(methods, Mapping) else {}


def upstream_methods(methods: Mapping[str, Any] | None = None) -> list[str]:
    """Training methods that have an upstream recipe."""
    from gs.upstream.recipes import recipes

    have = recipes()
    return [m for m in train_methods(methods) if m in have]


def upstream_codecs(methods: Mapping[str, Any] | None = None) -> list[str]:
    """Codecs whose upstream recipe compresses a trained model (``{codec}~upstream@{base}``)."""
    from gs.upstream.recipes import recipes

    have = recipes()
    return [m for m in codec_methods(methods) if m in have and have[m].codec_args is not None]


def _with_implementations(config: Mapping[str, Any], out: list[Run], reg: Mapping[str, Any]) -> list[Run]:
    """``out`` (our runs) with an upstream twin after each training run that a recipe can run,
    and without our runs when ``ours`` is not among the implementations."""
    if not uses_upstream(config):
        return out
    from gs.upstream.recipes import recipes

    have = recipes()
    res = []
    for r in out:
        codec, cvariant, _, _ = r.parts()
        impls = implementations(config, codec)
        if "ours" in impls:
            res.append(r)
        if UPSTREAM in impls and r.is_codec_over_base and codec in have and have[codec].codec_args is not None \
                and have[codec].supports(method_params(config, codec, cvariant, r.dataset, r.scene, reg)):
            res.append(Run(r.dataset, r.scene, upstream_id(r.method), r.variant, r.seed))  # same input model
        if UPSTREAM in impls and not r.is_codec_over_base and r.method in have:
            params = method_params(config, r.method, r.variant, r.dataset, r.scene, reg)
            if have[r.method].supports(params):
                try:  # a schedule the authors' code cannot run is a config error, not a failed job
                    have[r.method].length(int(config.get("iterations", 30_000)), params)
                except ValueError as e:
                    raise ConfigError(str(e)) from None
                res.append(Run(r.dataset, r.scene, upstream_id(r.method), r.variant, r.seed))
    if not res:
        raise ConfigError(f"implementations: {implementations(config)}: no selected run can be trained by the authors' code "
                          f"(methods with an upstream recipe: {sorted(have)}; variants only our code has are skipped)")
    return res


def baseline_method(methods: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """The run every other method is compared to: the registry's first training method at
    its default variant."""
    reg = _registry(methods)
    first = train_methods(reg)[0]
    return first, reg[first].default_variant


def baseline_inputs(method: str, methods: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Params a method takes from the baseline's run (param -> train_stats key); {} for the
    baseline itself."""
    reg = _registry(methods)
    if method == baseline_method(reg)[0]:
        return {}
    return dict(getattr(reg[method], "baseline_inputs", None) or {})


def prefix_iteration(config: Mapping[str, Any], method: str, dataset: str, scene: str,
                     methods: Mapping[str, Any] | None = None) -> int | None:
    """The run iteration at which ``method`` starts from the baseline's checkpoint (its
    ``init_from_baseline_at``, scaled by ``iterations``), or None when it trains from scratch.

    The prefix is shared only when it is the same computation: the baseline runs the recipe's
    defaults here (no ``params`` override for this dataset/scene) and the method overrides no
    densification setting, since its first iterations are exactly the baseline recipe."""
    from dataclasses import fields

    from gs.methods.baseline import DensifyConfig

    reg = _registry(methods)
    at = getattr(reg[method], "init_from_baseline_at", None)
    base, bvariant = baseline_method(reg)
    if not at or method == base:
        return None
    if method_params(config, base, bvariant, dataset, scene, reg):
        return None
    densify = {f.name for f in fields(DensifyConfig)}
    for variant in reg[method].variants:
        if densify & set(method_params(config, method, variant, dataset, scene, reg)):
            return None
    it = int(round(at * float(config["iterations"]) / 30000))
    return it if it >= 1 else None


def prefix_iterations(config: Mapping[str, Any], methods: Mapping[str, Any] | None = None) -> list[int]:
    """Every prefix checkpoint some configured run starts from (the baseline saves these)."""
    reg = _registry(methods)
    its = {prefix_iteration(config, r.method, r.dataset, r.scene, reg) for r in runs(config, reg)
           if not r.is_codec_over_base and r.method in reg}
    return sorted(i for i in its if i)


def method_params(config: Mapping[str, Any], method: str, variant: str, dataset: str, scene: str,
                  methods: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Registry params (defaults <- presets <- variant) <- the config's ``methods.{m}.params``."""
    reg = _registry(methods)
    block = (config.get("methods") or {}) if isinstance(config.get("methods"), Mapping) else {}
    overrides = (block.get(method) or {}).get("params") or {}
    return reg[method].params_for(variant, dataset, scene, overrides=overrides)


def metrics_targets(config: Mapping[str, Any], methods: Mapping[str, Any] | None = None) -> list[str]:
    res = config.get("results_dir", "results")
    return [f"{r.dir(res)}/metrics.json" for r in runs(config, methods)]


def report_targets(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The files the report stage writes, grouped by kind (all are ``rule all`` targets)."""
    res = config.get("results_dir", "results")
    ds = datasets(config)
    return {
        "results": [f"{res}/tables/results.csv", f"{res}/tables/results.html"],
        "tables": [f"{res}/tables/{d}{ext}" for d in ds for ext in ("_survey.csv", ".md", ".tex", ".html")],
        "bd": [f"{res}/tables/{d}_bd{ext}" for d in ds for ext in (".csv", ".md", ".html")]
        + [f"{res}/tables/bd_summary{ext}" for ext in (".csv", ".md", ".html")],
        "plots": [f"{res}/plots/{d}_rd{ext}" for d in ds for ext in (".png", ".svg")],
        "strips": [f"{res}/strips/{d}/{s}.png" for d, s in all_scenes(config)],
        "provenance": [f"{res}/provenance.json", f"{res}/provenance.html"],
        "deviations": [f"{res}/tables/deviations.csv", f"{res}/tables/deviations.html"],
        "fidelity": [f"{res}/tables/fidelity{ext}" for ext in (".csv", ".md", ".html")]
        if uses_upstream(config) else [],
    }


def all_targets(config: Mapping[str, Any]) -> list[str]:
    return [p for group in report_targets(config).values() for p in group]


# ------------------------------------------------------------------------------ wildcards
def alternation(names: Iterable[str]) -> str:
    names = sorted(set(names), key=len, reverse=True)  # longest first: no prefix shadowing
    return "(?:" + "|".join(re.escape(n) for n in names) + ")" if names else "(?!)"


def wildcard_constraints(config: Mapping[str, Any], methods: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Regexes that keep every wildcard inside one path component and one meaning."""
    reg = _registry(methods)
    trains, codecs = train_methods(reg), codec_methods(reg)
    names = set(datasets(config))
    ups = upstream_methods(reg) if uses_upstream(config) else []
    ucodecs = upstream_codecs(reg) if uses_upstream(config) else []
    return {
        "dataset": alternation(names),
        "scene": NAME_RE,
        "method": alternation(trains),  # a trained model's method (train rule)
        "umethod": alternation(ups),  # a method trained by its authors' code ({umethod}~upstream)
        "ucodec": alternation(ucodecs),  # a codec run by its authors' code ({ucodec}~upstream@{base})
        "urecipe": alternation(ups + ucodecs),  # an authors' code base to build
        "trained_codec": alternation(trained_codecs(reg)),
        "codec": alternation(codecs),
        "base": alternation(trains),
        "variant": NAME_RE + SEED_RE,  # a trained model's variant folder (~seed<N> for an extra seed)
        "cvariant": NAME_RE,
        "bvariant": NAME_RE + SEED_RE,
        # an evaluated run: a training method, or codec@base
        "run": f"(?:{alternation(trains)}|{alternation(codecs)}{SEP}{alternation(trains)}"
               + (f"|{alternation(ups)}{re.escape(UPSTREAM_SUFFIX)}" if ups else "")
               + (f"|{alternation(ucodecs)}{re.escape(UPSTREAM_SUFFIX)}{SEP}{alternation(trains)}" if ucodecs else "")
               + ")",
        "rvariant": f"{NAME_RE}(?:{SEP}{NAME_RE})?{SEED_RE}",
        "archive": alternation(downloads(config)) if downloads(config) else "(?!)",
        "stem": alternation(archive_stem(a) for a in downloads(config)) if downloads(config) else "(?!)",
    }


# ------------------------------------------------------------------------------ scripts
def load_scene_from_manifest(manifest: str | Path):
    """Load the scene a ``scene.json`` (written by the prepare_scene rule) describes."""
    import json

    from gs.data import load_scene

    info = json.loads(Path(manifest).read_text())
    return load_scene(info["path"], **info["protocol"])


# ------------------------------------------------------------------------------ report inputs
def strip_runs(runs: list[tuple[str, str, str]], methods: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(label, metrics path) for a comparison strip: the baseline (first training method of
    the registry) first, then one run per method, its default variant when present."""
    reg = _registry(methods)
    order = {m: i for i, m in enumerate(reg)}
    by_method: dict[str, list[tuple[str, str]]] = {}
    for method, variant, path in runs:
        by_method.setdefault(method, []).append((variant, path))

    def key(m: str) -> tuple[int, int, str]:
        codec, _, base, _ = split_run(m, "x@x") if SEP in m else (m, None, None, None)
        return (1 if base else 0, order.get(codec, len(order)), m)

    out = []
    for m in sorted(by_method, key=key):
        codec = m.split(SEP, 1)[0]
        default = reg[codec].default_variant if codec in reg else None
        pick = next(((v, p) for v, p in by_method[m] if v.split(SEP, 1)[0] == default), by_method[m][0])
        out.append((f"{m} {pick[0]}", pick[1]))
    return out
