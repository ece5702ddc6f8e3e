"""Train a method with its authors' code (a :class:`~gs.upstream.recipes.Recipe`) on one scene.

Steps: check the toolchain (git; for CUDA code ``nvcc`` and a CUDA device), clone the
repository at the pinned commit into ``{cache}/<name>@<commit>/src`` (once, source fixes
applied), build its CUDA extensions into ``{cache}/<name>@<commit>/build/cuda<v>-torch<v>/``
(once per commit, CUDA and torch version: a second run reuses them), run its training script
with our split and resolution, and copy the trained PLY into our run folder with a
``train_stats.json`` that names the implementation (``upstream@<commit>``). Every failure is
one :class:`UpstreamError` line naming what is missing; the run folder then holds none of the
outputs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from gs.io import write_json
from gs.upstream import UPSTREAM
from gs.upstream.recipes import Recipe, Tool

DONE = ".gsbench-done"  # marker: a checkout or a build finished


class UpstreamError(RuntimeError):
    """Upstream code cannot be fetched, built or run (one line: what is missing)."""


def implementation_label(commit: str) -> str:
    return f"{UPSTREAM}@{commit[:12]}"


# ------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (two jobs of one commit clone and build it once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def _failure_line(lines: list[str]) -> str:
    """The last exception line of a failed command's output (``TypeError: ...``), or its last line."""
    return next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), lines[-1] if lines else "no output")


def _run(cmd: list[str], what: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run ``cmd``, its output streamed line by line to our stdout (the rule's log, so a long
    run shows its progress bar while it trains) and returned; a failure is one line with the
    Python exception the command ended with (a progress bar may print after its traceback), or
    else its last output line."""
    print("$ " + " ".join(cmd), flush=True)
    lines = []
    # text mode reads a progress bar's carriage returns as line ends
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as proc:
        for line in proc.stdout:
            print(line, end="" if line.endswith("\n") else "\n", flush=True)
            if line.strip():
                lines.append(line.strip())
    if proc.returncode != 0:
        raise UpstreamError(f"{what} (exit {proc.returncode}): {_failure_line(lines)}")
    return "\n".join(lines)


def repo_name(repository: str) -> str:
    """``https://github.com/owner/name(.git)`` -> ``owner+name`` (a folder name)."""
    parts = [p for p in re.split(r"[/:]", repository.rstrip("/")) if p]
    tail = [re.sub(r"\.git\Z", "", p) for p in parts[-2:]]
    return "+".join(re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in tail)


# ------------------------------------------------------------------------------ steps
def check_toolchain(method: str, recipe: Recipe) -> None:
    """git always; ``nvcc`` and a CUDA device when the recipe builds or runs CUDA code."""
    if shutil.which("git") is None:
        raise UpstreamError(f"{method}~upstream: `git` not found on PATH (needed to fetch the authors' code)")
    if not recipe.needs_cuda:
        return
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if shutil.which("nvcc") is None and not (cuda_home and Path(cuda_home, "bin", "nvcc").is_file()):
        raise UpstreamError(f"{method}~upstream: no CUDA toolkit: `nvcc` not found on PATH or in $CUDA_HOME/bin "
                            "(the authors' code builds CUDA extensions)")
    import torch

    if not torch.cuda.is_available():
        raise UpstreamError(f"{method}~upstream: no CUDA device visible to torch (the authors' code trains on CUDA)")


def source_folder_name(repository: str, commit: str) -> str:
    """``owner+name@<commit>``: a checkout's folder in the cache and in an offline sources folder."""
    return f"{repo_name(repository)}@{commit}"


def clone(repository: str, commit: str, dest: Path, hint: str = "",
          overrides: Mapping[str, tuple[str, str]] | None = None) -> None:
    """``git clone`` of ``repository`` into ``dest`` at ``commit``, submodules included (those
    in ``overrides`` at the commit given there instead of the recorded one)."""
    _run(["git", "clone", "--quiet", "--no-checkout", repository, str(dest)],
         f"cannot clone {repository} (no internet, or the repository is gone){hint}")
    try:
        _run(["git", "-C", str(dest), "checkout", "--quiet", commit], f"checkout of {commit}")
    except UpstreamError:  # a commit no branch head reaches: ask for it by name
        _run(["git", "-C", str(dest), "fetch", "--quiet", "origin", commit], f"{repository} has no commit {commit}")
        _run(["git", "-C", str(dest), "checkout", "--quiet", commit], f"checkout of {commit}")
    _run(["git", "-C", str(dest), "submodule", "update", "--quiet", "--init", "--recursive"],
         f"cannot fetch the submodules of {repository} (no internet?)")
    for path, (url, sub_commit) in (overrides or {}).items():
        sub = str(dest / path)
        _run(["git", "-C", sub, "fetch", "--quiet", url, sub_commit], f"cannot fetch {sub_commit} of {url}")
        _run(["git", "-C", sub, "checkout", "--quiet", sub_commit], f"checkout of {sub_commit} in {path}")
        _run(["git", "-C", sub, "submodule", "update", "--quiet", "--init", "--recursive"],
             f"cannot fetch the submodules of {url}")


def export_sources(dest: str | Path, pins: Mapping[str, tuple[str, str]],
                   recipes: Mapping[str, Recipe] | None = None) -> list[Path]:
    """Clone each method's repository at its pinned commit (``pins``: method -> (repository,
    commit); submodule overrides from ``recipes``) into ``{dest}/<owner>+<name>@<commit>/``: the
    ``upstream_sources`` folder of an offline machine. Folders already there are kept."""
    out = []
    tools = {t.name: (t.repository, t.commit) for r in (recipes or {}).values() if r.method in pins for t in r.tools}
    for method, (repository, commit) in {**pins, **tools}.items():
        recipe = (recipes or {}).get(method)
        if commit == "unpinned":
            raise UpstreamError(f"{method}~upstream: the deviations file pins no commit")
        folder = Path(dest) / source_folder_name(repository, commit)
        if not folder.is_dir():
            tmp = folder.with_name(folder.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            try:
                clone(repository, commit, tmp, overrides=recipe.submodule_overrides if recipe else None)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            tmp.rename(folder)
        print(f"{method}: {folder}")
        out.append(folder)
    return out


def checkout(repository: str, commit: str, cache: str | Path, recipe: Recipe,
             sources: str | Path | None = None) -> Path:
    """The repository at ``commit`` with its submodules and the recipe's fixes, set up once in
    ``{cache}/<name>@<commit>/src``: copied from ``{sources}/<name>@<commit>/`` when that
    folder exists (a tree exported on a machine with internet, for offline clusters), else
    cloned."""
    folder = Path(cache) / source_folder_name(repository, commit)
    src = folder / "src"
    offline = Path(sources) / source_folder_name(repository, commit) if sources else None
    with _locked(folder.with_name(folder.name + ".lock")):
        if (src / DONE).is_file():
            print(f"using the checkout in {src}")
            return src
        tmp = folder / "src.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        exported = offline is not None and offline.is_dir()
        try:
            if exported:
                print(f"copying the sources exported in {offline}")
                shutil.copytree(offline, tmp, symlinks=True)
            else:
                clone(repository, commit, tmp, hint=f" (or export it to {offline})" if offline is not None else "",
                      overrides=recipe.submodule_overrides)
            apply_fixes(tmp, recipe, commit)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(src)
        (src / DONE).write_text(f"{repository} {commit}" + (f" (from {offline})" if exported else "") + "\n")
    return src


def apply_fixes(src: Path, recipe: Recipe, commit: str = "") -> None:
    """Unpack the recipe's archives, then insert each fix's line at the top of its file unless
    the file has it already (a file the checkout lacks is skipped, with a note in the log)."""
    import zipfile

    for name in recipe.unpack:
        if not (src / name).is_file():
            raise UpstreamError(f"{recipe.method}~upstream: {name} is not in the repository at {commit or 'HEAD'}")
        with zipfile.ZipFile(src / name) as z:
            z.extractall(src)
        print(f"unpacked {name}")
    for fix in recipe.fixes:
        path = src / fix.path
        if not path.is_file():  # a fork may lay its rasterizer out differently: its build says if it matters
            print(f"fix skipped: {fix.path} is not in the repository at {commit or 'HEAD'}")
            continue
        text = path.read_text()
        why = f" ({fix.why})" if fix.why else ""
        if fix.replace is not None:  # a line that must change for the code to run at all
            if fix.replace in text:
                continue
            if text.count(fix.line) != 1:
                raise UpstreamError(f"{recipe.method}~upstream: {fix.path} at {commit or 'HEAD'} does not contain "
                                    f"{fix.line!r} exactly once; the recipe's fix no longer applies")
            path.write_text(text.replace(fix.line, fix.replace))
            print(f"fix: {fix.line!r} -> {fix.replace!r} in {fix.path}{why}")
        elif fix.line not in text.splitlines():
            path.write_text(fix.line + "\n" + text)
            print(f"fix: {fix.line} at the top of {fix.path}{why}")


def build_key() -> str:
    """The build cache's key: CUDA and torch versions (extensions are ABI-bound to both)."""
    import torch

    raw = f"cuda{torch.version.cuda or 'none'}-torch{torch.__version__}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)


def build_extensions(src: Path, recipe: Recipe) -> Path | None:
    """Build the recipe's extensions into ``<checkout>/../build/<key>/`` once; the folder to put
    on PYTHONPATH (None when there is nothing to build)."""
    if not recipe.extensions and not recipe.optional_extensions:
        return None
    site = src.parent / "build" / build_key()
    with _locked(site.with_name(site.name + ".lock")):
        if (site / DONE).is_file():
            print(f"using the extensions built in {site}")
            return site
        tmp = site.with_name(site.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            skipped = []
            for ext in (*recipe.extensions, *recipe.optional_extensions):
                optional = ext not in recipe.extensions
                if not (src / ext).is_dir():
                    if optional:
                        skipped.append(f"{ext} (not in the checkout)")
                        continue
                    raise UpstreamError(f"{recipe.method}~upstream: {ext} is not in the checkout {src}")
                try:
                    # built from a temporary copy: setuptools writes build/ and *.egg-info into the
                    # tree it builds, and the checkout stays as it was set up
                    with tempfile.TemporaryDirectory(prefix="gsbench-build-") as work:
                        copy = Path(work) / Path(ext).name
                        shutil.copytree(src / ext, copy, symlinks=True)
                        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                              "--target", str(tmp.resolve()), str(copy)],
                             f"{recipe.method}~upstream: building {ext} failed", cwd=Path(work))
                except UpstreamError as exc:
                    if not optional:
                        raise
                    skipped.append(f"{ext} ({exc})")
                    print(f"optional extension not built, the code runs without it: {exc}")
            tmp.mkdir(parents=True, exist_ok=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(site, ignore_errors=True)
        tmp.rename(site)
        (site / DONE).write_text(" ".join(recipe.extensions) + "\n" + "".join(f"not built: {x}\n" for x in skipped))
    return site


def protocol_args(method: str, protocol: Mapping[str, Any]) -> list[str]:
    """Our evaluation protocol as the Inria command line: ``-i`` image folder, ``-r`` factor,
    ``-w`` white background. Upstream's split is fixed to every 8th image; its automatic
    resolution (-r -1) caps the width at 1600 px where ours caps the longest side at max_side."""
    if int(protocol.get("test_every", 8)) != 8:
        raise UpstreamError(f"{method}~upstream: the authors' code holds out every 8th image; test_every="
                            f"{protocol['test_every']} cannot be reproduced")
    out = []
    if protocol.get("images"):
        out += ["-i", str(protocol["images"])]
    r = protocol.get("resolution", -1)
    if r in (-1, None) and int(protocol.get("max_side", 1600)) != 1600:
        raise UpstreamError(f"{method}~upstream: max_side={protocol['max_side']}: the authors' code caps images at "
                            "1600 px; give a resolution factor (1, 2, 4 or 8) instead")
    if r not in (-1, None):
        if float(r) not in (1.0, 2.0, 4.0, 8.0):
            raise UpstreamError(f"{method}~upstream: resolution {r}: the authors' code takes -r 1, 2, 4 or 8")
        out += ["-r", str(int(r))]
    if protocol.get("white_background"):
        out += ["-w"]
    return out


def train_command(recipe: Recipe, scene_path: str | Path, out_dir: str | Path, iterations: int,
                  protocol: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    try:
        n = str(recipe.length(iterations, params))
    except ValueError as e:
        raise UpstreamError(str(e)) from None
    return [sys.executable, recipe.script, "-s", str(Path(scene_path).resolve()),
            recipe.output_flag, str(Path(out_dir).resolve()),
            "--eval", "--iterations", n, "--test_iterations", n, "--save_iterations", n,
            *([recipe.length_flag, n] if recipe.length_flag else []),
            *protocol_args(recipe.method, protocol), *recipe.args(params)]


def _prepared_env(recipe: Recipe, repository: str, commit: str, cache: str | Path,
                  sources: str | Path | None) -> tuple[Path, dict[str, str]]:
    """The prepared checkout and the environment its scripts run in: the built extensions
    first on PYTHONPATH, as an absolute path (the scripts do not run where the cache path is
    relative to)."""
    src, site = prepare_upstream(recipe, repository, commit, cache, sources)
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site.resolve()), env.get("PYTHONPATH", "")) if p)
    return src, env


def inria_cameras_json(cameras: list[Any], dest: Path) -> Path:
    """``cameras.json`` as the Inria training script writes it (camera-to-world rotation rows
    and centre, focal lengths in pixels), for code that reads a trained model's cameras."""
    import numpy as np

    entries = []
    for i, cam in enumerate(cameras):
        c2w = np.linalg.inv(cam.viewmat.detach().cpu().double().numpy())
        entries.append({"id": i, "img_name": Path(cam.name).stem, "width": int(cam.width), "height": int(cam.height),
                        "position": c2w[:3, 3].tolist(), "rotation": c2w[:3, :3].tolist(),
                        "fy": float(cam.fy), "fx": float(cam.fx)})
    write_json(dest, entries)
    return dest


def run_upstream_codec(recipe: Recipe, repository: str, commit: str, model_in: str | Path, cameras: list[Any],
                       params: Mapping[str, Any], model_out: str | Path, stats_out: str | Path, cache: str | Path,
                       sources: str | Path | None = None, white_background: bool = False) -> dict[str, Any]:
    """Compress ``model_in`` with the authors' codec and decode it with their code; write
    ``model_out`` (the decoded PLY) and ``stats_out`` (codec_stats.json: the bytes of their
    streams, their encode and decode seconds); return the statistics. Raises :class:`UpstreamError`.

    The input is linked as ``stage/model/point_cloud.ply`` beside the cameras of its training
    run (``cameras``, written as the Inria trainer writes them), because the authors' script
    names its outputs after that folder and writes beside the input; it runs in ``work/``,
    where it keeps its intermediate files."""
    method = recipe.method
    out_dir = Path(model_out).parent / "upstream_output"
    stage, work = out_dir / "stage" / "model", out_dir / "work"
    src, env = _prepared_env(recipe, repository, commit, cache, sources)
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        stage.mkdir(parents=True)
        work.mkdir()
        (stage / "point_cloud.ply").symlink_to(Path(model_in).resolve())
        cams = inria_cameras_json(cameras, stage / "cameras.json")
        peak_file = out_dir.resolve() / "gsbench_peak_memory.json"
        cmd = [sys.executable, str(Path(__file__).with_name("measure.py")), str(peak_file),
               str((src / recipe.script).resolve()), "--model", str((stage / "point_cloud.ply").absolute()),
               "--camera_json", str(cams.resolve()), *recipe.codec_args(params, src), *recipe.fixed_args,
               *(["--white_background"] if white_background else [])]
        t0 = time.perf_counter()
        output = _run(cmd, f"{method}~upstream: {recipe.script} failed", cwd=work, env=env)
        seconds = time.perf_counter() - t0
        decoded = stage / recipe.output
        if not decoded.is_file():
            raise UpstreamError(f"{method}~upstream: {recipe.script} wrote no {recipe.output}")
        try:
            result = recipe.codec_result(stage, work, output)
        except ValueError as e:
            raise UpstreamError(str(e)) from None
        os.replace(decoded, model_out)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    peak = json.loads(peak_file.read_text()).get("peak_gpu_memory_bytes") if peak_file.is_file() else None
    stats = {
        "method": method, "implementation": implementation_label(commit), "repository": repository,
        "commit": commit, "params": dict(params), "command": cmd[3:], "num_gaussians": ply_count(Path(model_out)),
        "wall_seconds": seconds, "wall_seconds_note": "the authors' whole script: significance, encode and decode",
        "peak_gpu_memory_bytes": peak, **result,
    }
    write_json(stats_out, stats)
    return stats


def decode_upstream(recipe: Recipe, bitstream: Path, model_out: Path, src: Path,
                    env: Mapping[str, str] | None) -> dict[str, Any]:
    """Decode a codec's bitstream with the authors' decoder (``recipe.decoder``, run in their
    checkout) into ``model_out``; return the codec statistics: the size is the bytes of what
    their decoder reads, which is also the size in the paper's layout."""
    stats_file = bitstream.parent / "gsbench_decode.json"
    _run([sys.executable, str(Path(__file__).with_name(recipe.decoder)), str(bitstream.resolve()),
          str(model_out.resolve()), str(stats_file.resolve())],
         f"{recipe.method}~upstream: decoding {bitstream.name} failed", cwd=src, env=env)
    decoded = json.loads(stats_file.read_text())
    size = bitstream.stat().st_size
    return {
        "size_bytes": size,
        "size_bytes_reason": f"bytes of the authors' bitstream ({bitstream.name}, what their decoder reads)",
        "size_bytes_paper_format": size,
        "size_bytes_paper_format_reason": f"the authors' own file ({bitstream.name})",
        "encode_seconds": None,
        "encode_seconds_reason": "the authors' encoder runs inside their training script (its last save)",
        "decode_seconds": decoded["decode_seconds"],
        "decode_seconds_note": decoded.get("note", ""),
    }


def private_scene(scene_path: str | Path, dest: Path) -> Path:
    """A view of the scene folder for one upstream run: links to its files, with a folder of
    its own for ``sparse/0``. The Inria loader writes ``sparse/0/points3D.ply`` into the scene
    on first use: this keeps that out of the user's folder and concurrent runs off one file."""
    scene = Path(scene_path).resolve()
    dest.mkdir(parents=True)
    for entry in scene.iterdir():
        if entry.name != "sparse":
            (dest / entry.name).symlink_to(entry)
    for model in sorted((scene / "sparse").glob("*")) if (scene / "sparse").is_dir() else []:
        if model.is_dir():
            (dest / "sparse" / model.name).mkdir(parents=True)
            for f in model.iterdir():
                if f.name != "points3D.ply":  # the run converts its own
                    (dest / "sparse" / model.name / f.name).symlink_to(f)
        else:
            (dest / "sparse").mkdir(exist_ok=True)
            (dest / "sparse" / model.name).symlink_to(model)
    return dest


#: the last update of a finished tqdm bar: "Training progress: 100%|███| 30000/30000 [15:13<00:00, ..."
_LOOP_DONE = re.compile(r"Training progress: 100%\|[^|]*\| (\d+)/\1 \[(?:(\d+):)?(\d+):(\d+)<")


def _train_seconds(output: str, script_seconds: float) -> dict[str, Any]:
    """``train_seconds`` of an authors' run: the elapsed time their training loop's progress bar
    printed when it finished (what our trainer times: the loop, not the loading or the test
    pass), or the whole script's wall time where there is no such bar."""
    done = _LOOP_DONE.findall(output)
    if not done:
        return {"train_seconds": script_seconds, "script_seconds": script_seconds,
                "train_seconds_note": "wall time of the authors' whole training script (it printed no finished "
                                      "'Training progress' bar; includes its data loading and test pass)"}
    _, h, m, sec = done[-1]
    return {"train_seconds": float(int(h or 0) * 3600 + int(m) * 60 + int(sec)), "script_seconds": script_seconds,
            "train_seconds_note": "the training loop: the elapsed time of the authors' finished 'Training progress' "
                                  "bar (whole seconds); script_seconds is the whole script"}


def ply_count(path: Path) -> int:
    from plyfile import PlyData

    return int(PlyData.read(str(path))["vertex"].count)


def build_tool(tool: Tool, method: str, cache: str | Path, sources: str | Path | None = None) -> Path:
    """Check out and build ``tool`` once (cached beside the checkouts); its program's path."""
    src = checkout(tool.repository, tool.commit, cache, Recipe(tool.name), sources)
    build = src.parent / "build" / "bin"
    program = build / tool.binary
    with _locked(build.with_name(build.name + ".lock")):
        if (build / DONE).is_file() and program.is_file():
            print(f"using {tool.name} built in {build}")
            return program
        for cmd in tool.build:
            if shutil.which(cmd[0]) is None:
                raise UpstreamError(f"{method}~upstream: `{cmd[0]}` not found on PATH (needed to build {tool.name})")
            _run([c.format(src=src.resolve(), build=build.resolve()) for c in cmd],
                 f"{method}~upstream: building {tool.name} failed", cwd=src)
        if not program.is_file():
            raise UpstreamError(f"{method}~upstream: building {tool.name} wrote no {tool.binary}")
        (build / DONE).write_text(f"{tool.repository}@{tool.commit}\n")
    return program


def install_tools(src: Path, recipe: Recipe, cache: str | Path, sources: str | Path | None = None) -> None:
    """Put each tool's program where the authors' code calls it (their checkout's paths)."""
    for tool in recipe.tools:
        program = build_tool(tool, recipe.method, cache, sources)
        for rel in tool.install:
            dest = src / rel
            if not dest.is_file() or dest.read_bytes() != program.read_bytes():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(program, dest)
                dest.chmod(0o755)
                print(f"{tool.name}: {program} -> {rel}")


def prepare_upstream(recipe: Recipe, repository: str, commit: str, cache: str | Path,
                     sources: str | Path | None = None) -> tuple[Path, Path | None]:
    """Check the toolchain, set up the checkout, build the programs it calls and its
    extensions (each once, cached); return (checkout, folder of the built extensions or None).
    The build rule runs this apart from training, so compiling never holds a GPU slot."""
    if commit == "unpinned":
        raise UpstreamError(f"{recipe.method}~upstream: the deviations file pins no commit")
    check_toolchain(recipe.method, recipe)
    src = checkout(repository, commit, cache, recipe, sources)
    install_tools(src, recipe, cache, sources)
    return src, build_extensions(src, recipe)


def run_upstream(recipe: Recipe, repository: str, commit: str, scene_path: str | Path,
                 protocol: Mapping[str, Any], iterations: int, params: Mapping[str, Any],
                 model_out: str | Path, stats_out: str | Path, cache: str | Path,
                 sources: str | Path | None = None) -> dict[str, Any]:
    """Train with the authors' code; write ``model_out`` (their PLY) and ``stats_out``
    (train_stats.json); return the statistics. Raises :class:`UpstreamError`."""
    method = recipe.method
    out_dir = Path(model_out).parent / "upstream_output"
    scene_view = out_dir / "scene"
    cmd = train_command(recipe, scene_view, out_dir, iterations, protocol,
                        params)  # before any work: bad protocol values fail first
    src, env = _prepared_env(recipe, repository, commit, cache, sources)
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        peak_file = out_dir.resolve() / "gsbench_peak_memory.json"
        private_scene(scene_path, scene_view)
        t0 = time.perf_counter()
        output = _run([cmd[0], str(Path(__file__).with_name("measure.py")), str(peak_file), *cmd[1:]],
                      f"{method}~upstream: {recipe.script} failed", cwd=src, env=env)
        seconds = time.perf_counter() - t0
        peak = json.loads(peak_file.read_text()).get("peak_gpu_memory_bytes") if peak_file.is_file() else None
        length = recipe.length(iterations, params)
        ply = out_dir / recipe.output.format(iterations=length)
        if not ply.is_file():
            raise UpstreamError(f"{method}~upstream: {recipe.script} wrote no {ply.relative_to(out_dir)}")
        codec = decode_upstream(recipe, ply, Path(model_out), src, env) if recipe.decoder else {}
        if not recipe.decoder:
            os.replace(ply, model_out)  # moved, not copied: the authors' folder keeps its logs and configs
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    stats = {
        "method": method, "implementation": implementation_label(commit), "repository": repository,
        "commit": commit, "iterations": length, **_train_seconds(output, seconds),
        "num_gaussians": ply_count(Path(model_out)), "params": dict(params), "command": cmd[1:],
        "peak_memory_bytes": peak,
        "peak_memory_note": "torch.cuda.max_memory_allocated() of the process that ran the authors' script",
        "seed_note": "the authors' code seeds itself (not our seed): runs of two seeds differ only by "
                     "nondeterministic GPU arithmetic",
        **codec,
    }
    write_json(stats_out, stats)
    return stats
