"""Re-execute the tutorial notebooks in place, so their stored outputs match the code.

Usage, from anywhere::

    python tutorials/run_all.py            # every notebook in tutorials/
    python tutorials/run_all.py 02 04      # only those whose name starts with 02 or 04

Each notebook runs top to bottom in a fresh ``python3`` kernel with ``tutorials/``
as its working directory, and is written back with its new outputs; the figures
it saves land in ``figures/``. The runtime of each notebook is printed. The exit
status is non-zero if any cell raised an error (that notebook is then left
unchanged on disk).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
#: Seconds a single cell may run before the notebook counts as failed.
CELL_TIMEOUT = 300


def notebook_paths(names=()):
    """The notebooks in tutorials/, in order, optionally only those matching ``names``.

    A name matches a notebook if it equals its file name, its stem, or a prefix
    of it (``02`` selects ``02_layers_and_backprop.ipynb``).
    """
    paths = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return paths
    chosen = [p for p in paths if any(p.name == n or p.stem.startswith(n) for n in names)]
    unknown = [n for n in names if not any(p.name == n or p.stem.startswith(n) for p in paths)]
    if unknown:
        raise SystemExit(f"no notebook in {HERE} matches {', '.join(unknown)}")
    return chosen


def kernel_env():
    """The environment the kernel inherits.

    The tutorials multiply small matrices, for which BLAS threads cost more than
    they save (much more when other processes share the cores), and plots must
    render without a display.
    """
    env = os.environ.copy()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def execute(path, timeout=CELL_TIMEOUT):
    """Run the notebook at ``path`` in a fresh kernel; return it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    # No timestamps, and consecutive prints merged into one output however the kernel
    # happened to flush them: re-running unchanged code leaves the file unchanged.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            coalesce_streams=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_env())
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names or prefixes (default: all)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT,
                        help=f"seconds allowed per cell (default {CELL_TIMEOUT})")
    args = parser.parse_args(argv)
    failed = []
    for path in notebook_paths(args.names):
        start = time.perf_counter()
        try:
            nb = execute(path, timeout=args.timeout)
        except CellExecutionError as error:
            print(f"FAILED  {path.name}  ({time.perf_counter() - start:.1f} s)\n{error}",
                  file=sys.stderr)
            failed.append(path.name)
            continue
        nbformat.write(nb, path)
        print(f"ok      {path.name:40s} {time.perf_counter() - start:5.1f} s", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
