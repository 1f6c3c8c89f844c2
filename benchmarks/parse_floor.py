"""The floor for ``wsdiag check`` over a tree: read every file and ``ast.parse`` the Python ones.

    python benchmarks/parse_floor.py FILES.txt

FILES.txt lists the files (one path a line) that ``wsdiag check`` scans in the tree
(``bench.py`` writes it with ``wsdiag.check.static.iter_files``), so both sides handle the
same files. Each file is read as bytes and decoded as UTF-8 (as ``check`` does); ``*.py``
files are parsed. Nothing else: no rules, no output beyond ``N files, M parsed``. Standard
library only, one process.
"""

import ast
import sys


def main(argv):
    if len(argv) != 1:
        print("usage: parse_floor.py FILES.txt", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        files = [ln.rstrip("\n") for ln in f if ln.strip()]
    parsed = 0
    for path in files:
        try:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if path.endswith((".py", ".pyw")):
            try:
                ast.parse(text, filename=path)
                parsed += 1
            except (SyntaxError, ValueError):
                pass
    print(f"{len(files)} files, {parsed} parsed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
