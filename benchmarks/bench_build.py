"""Time building ImageNet-Sketch from one archive, by our builder and by the alternatives, in one run.

    python benchmarks/bench_build.py ARCHIVE [--repeat 3] [--methods raw,build1,build2,imagefolder,extract,export2]
                                             [--work-dir DIR] [--json results.json]

Each method runs as a fresh subprocess (interpreter start and imports count, as a user pays them), with a
fresh, empty datasets cache that is deleted afterwards, on the same archive, which is read once first so
every method starts from a warm page cache. With --repeat N the methods run round-robin N times (so noise
from other work on the machine spreads over all of them) and the median and best times are reported.
Peak RSS is the largest single process of the method's tree (`ru_maxrss` from wait4) and, when psutil is
installed (`pip install -e '.[bench]'`), the peak RSS and PSS sums over the whole process tree, sampled
every 50 ms (PSS counts the pages forked workers share once, RSS once per process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

RAW_READ = """
import json, sys, zipfile
rows = size = 0
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        if not info.is_dir():
            size += len(archive.read(info))  # inflates and checks the CRC
            rows += 1
print("RESULT", json.dumps({"rows": rows, "bytes": size}))
"""

IMAGEFOLDER = """
import json, sys, datasets
try:
    loaded = datasets.load_dataset("imagefolder", data_files=sys.argv[1], cache_dir=sys.argv[2])
    result = {split: {"rows": part.num_rows, "columns": part.column_names} for split, part in loaded.items()}
    result["rows"] = sum(part.num_rows for part in loaded.values())
except Exception as error:
    result = {"rows": 0, "error": f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"}
print("RESULT", json.dumps(result))
"""

# The machine's own limits, each alone: what a build of this archive cannot beat, so the table says which binds.
READ_LIMIT = """
import json, sys
size = 0
with open(sys.argv[1], "rb", buffering=0) as file:
    while chunk := file.read(1 << 24):
        size += len(chunk)
print("RESULT", json.dumps({"bytes": size}))
"""

INFLATE_LIMIT = """
import json, sys, zipfile, zlib
import deflate
size = 0
with zipfile.ZipFile(sys.argv[1]) as archive, open(sys.argv[1], "rb") as file:
    for info in archive.infolist():
        if info.is_dir():
            continue
        file.seek(info.header_offset + 26)
        skip = int.from_bytes(file.read(2), "little") + int.from_bytes(file.read(2), "little")
        file.seek(skip, 1)
        data = file.read(info.compress_size)
        out = deflate.deflate_decompress(data, info.file_size) if info.compress_type == 8 else data
        size += len(out)  # libdeflate, one process, no CRC: the build's inflating alone
print("RESULT", json.dumps({"bytes": size}))
"""

WRITE_LIMIT = """
import json, os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    total = sum(info.file_size for info in archive.infolist())
block, left = os.urandom(1 << 24), total
path = os.path.join(sys.argv[2], "write-limit.bin")
os.makedirs(sys.argv[2], exist_ok=True)
with open(path, "wb") as file:
    while left > 0:
        left -= file.write(block[: min(left, len(block))])
    file.flush()
    os.fsync(file.fileno())  # on the disk, not only in the page cache: what the build's output costs in the end
print("RESULT", json.dumps({"bytes": total}))
"""

METHODS = {
    "read": "limit: read the archive once, sequentially (page cache warm)",
    "inflate": "limit: inflate every member with libdeflate, one process (the build's inflating alone)",
    "write": "limit: write the images' bytes to the cache's disk, fsync'd (the build's output alone)",
    "raw": "raw sequential zipfile read, one process (baseline)",
    "build1": "imagenet-sketch build --num-proc 1",
    "build2": "imagenet-sketch build --num-proc 2",
    "imagefolder": 'load_dataset("imagefolder", data_files=ARCHIVE)',
    "extract": "extract to disk, then yield paths (old loading script)",
    "export2": "imagenet-sketch export --num-proc 2, from the prepared cache (its build is not timed)",
}
# Untimed steps a method needs first, in the same scratch folder: export reads the build's prepared copy.
SETUP = {"export2": "build2"}


@dataclass
class Run:
    method: str
    seconds: float
    cpu_seconds: float
    exit_code: int
    max_process_rss_mb: float
    tree_rss_mb: float | None
    tree_pss_mb: float | None
    load_before: float
    load_after: float
    result: dict = field(default_factory=dict)
    stderr_tail: str = ""


def command_for(method: str, archive: str, cache_dir: str) -> list[str]:
    python = sys.executable
    cli = shutil.which("imagenet-sketch", path=os.path.dirname(python)) or shutil.which("imagenet-sketch")
    entry = [cli] if cli else [python, "-m", "imagenet_sketch_tools.cli.main"]
    if method == "raw":
        return [python, "-c", RAW_READ, archive]
    if method in ("read", "inflate"):
        return [python, "-c", READ_LIMIT if method == "read" else INFLATE_LIMIT, archive]
    if method == "write":
        return [python, "-c", WRITE_LIMIT, archive, cache_dir]
    if method in ("build1", "build2"):
        return [*entry, "build", "--source", archive, "--num-proc", method[-1], "--cache-dir", cache_dir]
    if method == "export2":
        output = os.path.join(os.path.dirname(cache_dir), "package")
        return [*entry, "export", "--source", archive, "--cache-dir", cache_dir, "--output", output, "--num-proc", "2"]
    if method == "imagefolder":
        return [python, "-c", IMAGEFOLDER, archive, cache_dir]
    if method == "extract":
        return [python, str(HERE / "extract_then_paths.py"), archive, cache_dir]
    raise ValueError(method)


def tree_memory_sampler(pid: int, peak: list[float], stop: threading.Event) -> None:
    """Keep in `peak` the largest [RSS sum, PSS sum] seen over the process and its descendants.

    RSS counts pages shared by forked workers once per process; PSS splits them, so its sum is the
    tree's real footprint. Both are kept: RSS is what the targets are stated in.
    """
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.wait(0.05):
        rss = pss = 0
        try:
            for process in [root, *root.children(recursive=True)]:
                try:
                    memory = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += memory.rss
                pss += getattr(memory, "pss", memory.rss)
        except psutil.NoSuchProcess:
            return
        peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)


def run_once(method: str, archive: str, work_dir: str) -> Run:
    scratch = tempfile.mkdtemp(prefix=f"bench-{method}-", dir=work_dir)
    cache_dir = os.path.join(scratch, "datasets")
    env = dict(os.environ, HF_HOME=os.path.join(scratch, "hf"), HF_DATASETS_CACHE=cache_dir)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", XDG_CACHE_HOME=os.path.join(scratch, "xdg"))
    env["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    out_path, err_path = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
    if method in SETUP:
        subprocess.run(command_for(SETUP[method], archive, cache_dir), env=env, capture_output=True, check=True)
    os.sync()  # the previous method's written output must not be flushed during this one
    load_before = os.getloadavg()[0]
    peak, stop = [0.0, 0.0], threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command_for(method, archive, cache_dir), stdout=out, stderr=err, env=env)
        sampler = None
        if _has_psutil():
            sampler = threading.Thread(target=tree_memory_sampler, args=(process.pid, peak, stop), daemon=True)
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        if sampler:
            sampler.join()
    stdout = Path(out_path).read_text(errors="replace")
    stderr = Path(err_path).read_text(errors="replace")
    shutil.rmtree(scratch, ignore_errors=True)
    return Run(
        method=method,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,  # the whole tree's, as the children are waited for
        exit_code=process.returncode,
        max_process_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        tree_rss_mb=peak[0] / 2**20 if sampler else None,
        tree_pss_mb=peak[1] / 2**20 if sampler else None,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        result=_result_of(method, stdout),
        stderr_tail="" if process.returncode == 0 else stderr[-2000:],
    )


def _result_of(method: str, stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
        if line.startswith(("built ", "exported ")):  # `build` and `export` say "built/exported N rows, ..."
            return {"rows": int(line.split()[1].replace(",", "")), "said": line}
    return {}


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def archive_figures(archive: str) -> dict:
    with zipfile.ZipFile(archive) as opened:
        images = [info for info in opened.infolist() if not info.is_dir()]
    return {
        "path": archive,
        "archive_bytes": os.path.getsize(archive),
        "images": len(images),
        "image_bytes": sum(info.file_size for info in images),
    }


def warm_page_cache(archive: str) -> None:
    with open(archive, "rb") as file:
        while file.read(1 << 24):
            pass


def summarise(runs: list[Run], figures: dict) -> list[dict]:
    rows = []
    for method in METHODS:
        mine = [run for run in runs if run.method == method]
        if not mine:
            continue
        ok = [run.seconds for run in mine if run.exit_code == 0] or [float("nan")]
        cpu = [run.cpu_seconds for run in mine if run.exit_code == 0] or [float("nan")]
        trees = [run.tree_rss_mb for run in mine if run.tree_rss_mb is not None]
        shares = [run.tree_pss_mb for run in mine if run.tree_pss_mb is not None]
        rows.append(
            {
                "method": method,
                "what": METHODS[method],
                "median_seconds": statistics.median(ok),
                "best_seconds": min(ok),
                "worst_seconds": max(ok),
                "median_cpu_seconds": statistics.median(cpu),
                "runs": len(mine),
                "failures": sum(run.exit_code != 0 for run in mine),
                "max_process_rss_mb": max(run.max_process_rss_mb for run in mine),
                "tree_rss_mb": max(trees) if trees else None,
                "tree_pss_mb": max(shares) if shares else None,
                "result": mine[-1].result,
            }
        )
    raw = next((row["median_seconds"] for row in rows if row["method"] == "raw"), None)
    for row in rows:
        seconds = row["median_seconds"]
        row["images_per_second"] = figures["images"] / seconds
        row["archive_mb_per_second"] = figures["archive_bytes"] / 1e6 / seconds
        row["throughput_vs_raw"] = raw / seconds if raw else None
    return rows


def print_table(rows: list[dict], figures: dict) -> None:
    print(
        f"\narchive {figures['path']}: {figures['archive_bytes'] / 1e9:.2f} GB, {figures['images']:,} images; "
        f"median (min-max) of the runs; CPU s = user+sys of the whole process tree (less sensitive to other load);\n"
        f"MB/s = archive MB per second; x raw = raw read time / method time"
    )
    header = f"{'method':<12}{'seconds':>22}{'CPU s':>7}{'img/s':>9}{'MB/s':>8}{'x raw':>7}"
    header += f"{'RSS max proc':>14}{'RSS tree':>10}{'PSS tree':>10}"
    print(header + "  result")
    for row in rows:
        tree = f"{row['tree_rss_mb']:.0f} MB" if row["tree_rss_mb"] is not None else "-"
        share = f"{row['tree_pss_mb']:.0f} MB" if row["tree_pss_mb"] is not None else "-"
        ratio = f"{row['throughput_vs_raw']:.2f}" if row["throughput_vs_raw"] else "-"
        failed = f" ({row['failures']} failed)" if row["failures"] else ""
        print(
            f"{row['method']:<12}{row['median_seconds']:>8.1f} "
            f"({row['best_seconds']:>5.1f}-{row['worst_seconds']:<5.1f})"
            f"{row['median_cpu_seconds']:>7.1f}"
            f"{row['images_per_second']:>9.0f}{row['archive_mb_per_second']:>8.0f}{ratio:>7}"
            f"{row['max_process_rss_mb']:>11.0f} MB{tree:>10}{share:>10}  {json.dumps(row['result'])[:90]}{failed}"
        )
    by_method = {row["method"]: row for row in rows}
    if {"build2", "raw"} <= by_method.keys():
        print(f"target: build2 >= 1.5x raw read: {by_method['build2']['throughput_vs_raw']:.2f}x")
    if {"build1", "raw"} <= by_method.keys():
        print(f"target: build1 >= 1.0x raw read: {by_method['build1']['throughput_vs_raw']:.2f}x")
    if "build2" in by_method and figures["images"] >= 50_000:
        print(f"target: a release-scale build2 in <= 25 s: {by_method['build2']['median_seconds']:.1f} s")
    if {"build2", "imagefolder"} <= by_method.keys():
        ratio = by_method["imagefolder"]["median_seconds"] / by_method["build2"]["median_seconds"]
        print(f"target: build2 >= 5x imagefolder: {ratio:.1f}x")
    if {"build2", "export2"} <= by_method.keys():
        ratio = by_method["build2"]["median_seconds"] / by_method["export2"]["median_seconds"]
        print(f"target: export2 >= 0.5x build2 throughput: {ratio:.2f}x")
    limits = {name: by_method[name]["median_seconds"] for name in ("read", "inflate", "write") if name in by_method}
    if limits:
        # two processes inflate on two cores: the inflate limit of build2 is half the one-process time
        shares = {"read": limits.get("read"), "inflate (2 cores)": (limits.get("inflate") or 0) / 2 or None,
                  "write": limits.get("write")}  # fmt: skip
        known = {name: seconds for name, seconds in shares.items() if seconds}
        binding = max(known, key=lambda name: known[name])
        said = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in known.items())
        print(f"machine limits for this archive: {said}; the one that binds a two-process build: {binding}")
    for method in ("build1", "build2"):
        if method in by_method:
            row = by_method[method]
            tree = row["tree_rss_mb"] if row["tree_rss_mb"] is not None else row["max_process_rss_mb"]
            print(
                f"target: {method} peak RSS < 1024 MB: tree {tree:.0f} MB (PSS {row['tree_pss_mb'] or 0:.0f} MB), "
                f"largest process {row['max_process_rss_mb']:.0f} MB"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("archive", help="a zip made by benchmarks/make_archive.py (or the real one)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method, round-robin (default 1)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--work-dir", help="where the fresh caches go (default: beside the archive)")
    parser.add_argument("--json", help="where to write the results (default: ARCHIVE.bench.json)")
    args = parser.parse_args(argv)
    archive = os.path.abspath(args.archive)
    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    unknown = set(methods) - METHODS.keys()
    if unknown or not os.path.isfile(archive):
        parser.error(f"unknown methods {sorted(unknown)}" if unknown else f"no archive at {archive}")
    work_dir = args.work_dir or os.path.dirname(archive)
    figures = archive_figures(archive)
    warm_page_cache(archive)
    runs = []
    for repeat in range(args.repeat):
        for method in methods:
            run = run_once(method, archive, work_dir)
            runs.append(run)
            status = "ok" if run.exit_code == 0 else f"FAILED ({run.exit_code}): {run.stderr_tail[-300:]}"
            print(
                f"[{repeat + 1}/{args.repeat}] {method:<12}{run.seconds:7.1f} s  CPU {run.cpu_seconds:5.1f} s  "
                f"load {run.load_before:.1f}  {status}",
                file=sys.stderr,
                flush=True,
            )
    rows = summarise(runs, figures)
    print_table(rows, figures)
    report = {
        "archive": figures,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "summary": rows,
        "runs": [asdict(run) for run in runs],
    }
    json_path = args.json or archive + ".bench.json"
    Path(json_path).write_text(json.dumps(report, indent=1))
    print(f"results written to {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
