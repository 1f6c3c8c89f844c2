"""A/B two wsdiag source trees in the same interleaved rounds (to check a speed-up before it lands).

    python benchmarks/ab.py A_DIR B_DIR [--runs 20] [--batch-runs 5]

A_DIR and B_DIR are directories that hold a ``wsdiag/`` package (e.g. this checkout and a
copy with a change applied: ``cp -r wsdiag /tmp/b/ && patch -d /tmp/b -p1 < change.diff``).
Each command runs as ``python -m wsdiag ...`` with the tree as its working directory, so that
tree's package is imported (``-m`` puts the working directory first on ``sys.path``).  Same
echo server, harness, output checks and bytecode handling as ``bench.py``; prints a Markdown
table of medians and B/A ratios.  Bounded like bench.py; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import bench
from bench import PY, WORK, Cmd, EchoServer, exit_is, measure, probe_json, prints


def commands(tree: Path, tag: str, url: str, urls_file: Path) -> tuple[list[Cmd], list[Cmd]]:
    w = [PY, "-m", "wsdiag"]
    one = [
        Cmd(f"{tag}-help", f"{tag}: `--help`", w + ["--help"], prints(b"Usage"), cwd=tree),
        Cmd(f"{tag}-probe", f"{tag}: `probe URL --json` (default)", w + ["probe", url, "--json"], probe_json(1), cwd=tree),
        Cmd(f"{tag}-min", f"{tag}: `probe URL --json -p minimal --no-controls`",
            w + ["probe", url, "--json", "-p", "minimal", "--no-controls"], probe_json(1), cwd=tree),
    ]
    many = [
        Cmd(f"{tag}-batch", f"{tag}: 500 URLs `-p minimal --no-controls --concurrency 16`",
            w + ["probe", "--from-file", str(urls_file), "-p", "minimal", "--no-controls", "--json", "--concurrency", "16"],
            probe_json(bench.BATCH_URLS), cwd=tree, timeout=120),
    ]
    return one, many


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch-runs", type=int, default=5)
    args = parser.parse_args(argv)
    for tree in (args.a, args.b):
        if not (tree / "wsdiag" / "__init__.py").exists():
            parser.error(f"{tree} holds no wsdiag/ package")
    WORK.mkdir(exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as bench.py: load from bytecode
    os.environ["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    server = EchoServer()
    try:
        url = server.url()
        urls_file = WORK / "urls.txt"
        urls_file.write_text("".join(server.url(f"?n={i}") + "\n" for i in range(bench.BATCH_URLS)))
        click = Cmd("click", '`python -c "import click"`', [PY, "-c", "import click"], exit_is(0))
        a1, a2 = commands(args.a.resolve(), "A", url, urls_file)
        b1, b2 = commands(args.b.resolve(), "B", url, urls_file)
        measure([click, *a1, *b1], args.runs, warmup=3)
        measure([*a2, *b2], args.batch_runs, warmup=1)
    finally:
        server.stop()
    print(f"A = {args.a.resolve()}\nB = {args.b.resolve()}\n")
    print("| command | A ms | B ms | B/A | A ÷ click | B ÷ click | A MiB | B MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for a, b in zip([*a1, *a2], [*b1, *b2]):
        if not (a.times and b.times):
            print(f"| {a.label[3:]} | failed: {(a.failures + b.failures)[:1]} |")
            continue
        ma, mb, mc = bench.med_ms(a), bench.med_ms(b), bench.med_ms(click)
        per_click = (f"{ma / mc:.2f}× | {mb / mc:.2f}×" if a in a1 else "| ")
        print(f"| {a.label[3:]} | {ma:.1f} | {mb:.1f} | {mb / ma:.2f}× | {per_click} | "
              f"{bench.med_mib(a):.1f} | {bench.med_mib(b):.1f} |")
    print(f"\n`import click`: {bench.med_ms(click):.1f} ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
