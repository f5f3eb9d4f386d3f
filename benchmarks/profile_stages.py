"""Where docclean's time goes: one `pipeline.run` under cProfile, timed in CPU seconds (fair on a busy machine).

    .venv/bin/python -m benchmarks.profile_stages [--size 1000] [--kind text|news|html] [--limit 200] [--top 25]
    .venv/bin/python -m benchmarks.profile_stages --stage boilerplate|extract|... [--kind ...] [--repeat 3]

Uses the benchmark corpus of ``benchmarks.pipeline`` (built on first use). Prints CPU ms per document of
each stage function (cumulative, so a stage includes what it calls) and the functions with the most own time.
With ``--stage``, times that one stage of the per-document chain alone, without the profiler (whose per-call
overhead inflates Python-heavy stages several times): the stages before it run untimed to prepare its input.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

# (label, module file suffix, function name): the stage entry points and the run's global steps
STAGES = [
    ("read", "docclean/read.py", "read_source"),
    ("normalize", "docclean/normalize.py", "normalize"),
    ("extract", "docclean/extract.py", "extract"),
    ("boilerplate", "docclean/boilerplate.py", "strip_boilerplate"),
    ("repair (learn)", "docclean/repair.py", "learn"),
    ("repair", "docclean/repair.py", "repair"),
    ("repair model load", "docclean/repair.py", "load"),
    ("chrome line keys", "docclean/chrome.py", "line_keys"),
    ("chrome plan", "docclean/pipeline.py", "plan_chrome"),
    ("chrome strip", "docclean/chrome.py", "strip_repeated_lines"),
    ("language", "docclean/language.py", "detect_many"),
    ("fingerprint", "docclean/dedup.py", "fingerprint"),
    ("dedup plan", "docclean/pipeline.py", "plan_dedup"),
    ("rows", "docclean/pipeline.py", "document_row"),
    ("rows back", "docclean/pipeline.py", "_doc_from_row"),
    ("stage write", "docclean/pipeline.py", "_write_stage"),
    ("commit", "docclean/pipeline.py", "commit_run"),
    ("process_batch", "docclean/pipeline.py", "process_batch"),
    ("finalize_batch", "docclean/pipeline.py", "finalize_batch"),
]


def sample(folder: Path, limit: int, into: Path) -> Path:
    files = sorted(p for p in folder.rglob("*") if p.is_file())[:limit]
    for p in files:
        dst = into / p.relative_to(folder)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
    return into


def time_stage(src: Path, config, stage: str, repeat: int) -> None:
    """CPU ms per document of one stage of the chain, best of ``repeat`` passes over the sample."""
    from docclean import read
    from docclean.pipeline import Stages

    steps = Stages(config).chain()
    names = [name for name, _ in steps]
    if stage not in names:
        raise SystemExit(f"--stage must be one of {', '.join(names)}")
    docs = [doc for source in read.discover(src, config.read) for doc in read.read_source(src, source, config.read)]
    inputs = []
    for doc in docs:
        for _, step in steps[: names.index(stage)]:
            if doc.rejected:
                break
            doc, _ = step(doc)
        if not doc.rejected:
            inputs.append(doc)
    run_stage = dict(steps)[stage]
    run_stage(inputs[0])  # model and table loading is per process, not per document
    passes = []
    for _ in range(repeat):
        t0 = time.process_time()
        for doc in inputs:
            run_stage(doc)
        passes.append(time.process_time() - t0)
    best = min(passes)
    megabytes = sum(len(doc.html or doc.text) for doc in inputs) / 1e6
    print(f"# {stage}: {len(inputs)} docs, {1000 * best / len(inputs):.2f} CPU ms/doc "
          f"(best of {repeat}; passes {', '.join(f'{1000 * t / len(inputs):.2f}' for t in passes)}), "
          f"{megabytes / best:.2f} MB/s of input")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.pipeline import corpus
    from docclean import pipeline
    from docclean.config import load_config

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--kind", default="text", choices=["text", "news", "html"])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--stage", help="time this one stage of the chain alone (no profiler)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        src = sample(corpus(args.size, (args.kind,)) / args.kind, args.limit, Path(tmp) / "in")
        config = load_config()
        if args.stage:
            time_stage(src, config, args.stage, args.repeat)
            return 0
        # warm-up outside the profile: model and table loading is per process, not per document
        pipeline.run(sample(src, 3, Path(tmp) / "warm"), Path(tmp) / "warm-out", config)
        profiler = cProfile.Profile(time.process_time)
        t0 = time.process_time()
        profiler.enable()
        report = pipeline.run(src, Path(tmp) / "out", config)
        profiler.disable()
        cpu = time.process_time() - t0
    n = report.inputs
    print(f"# {args.kind}: {n} docs, {cpu:.1f} CPU s, {n / cpu:.1f} docs/cpu-s (profiler overhead included)")
    stats = pstats.Stats(profiler)
    by_key = stats.stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    print(f"{'stage':<20} {'calls':>7} {'cum ms/doc':>11}")
    for label, file_suffix, name in STAGES:
        hits = [(k, v) for k, v in by_key.items() if k[0].endswith(file_suffix) and k[2] == name]
        if hits:
            calls = sum(v[1] for _, v in hits)
            cum = sum(v[3] for _, v in hits)
            print(f"{label:<20} {calls:>7} {1000 * cum / n:>11.2f}")
    print(f"\n# top {args.top} functions by own CPU time (ms/doc)")
    rows = sorted(by_key.items(), key=lambda kv: -kv[1][2])[: args.top]
    for (file, line, name), (cc, nc, tt, ct, _) in rows:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "builtin"
        print(f"{1000 * tt / n:>8.2f} own {1000 * ct / n:>8.2f} cum {nc:>8}  {name}  ({where}:{line})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
