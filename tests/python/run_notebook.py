"""Executes a notebook with nbclient and fails on any cell error:
python3 tests/python/run_notebook.py NOTEBOOK OUT_DIR (run by tests/python.rs).

The executed copy, with its outputs and figures, is written to OUT_DIR/<name>; the
notebook's run folders go to OUT_DIR/runs (IONFIELD_EXAMPLES_OUT)."""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

notebook, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
os.environ["IONFIELD_EXAMPLES_OUT"] = str(out / "runs")
nb = nbformat.read(notebook, as_version=4)
started = time.time()
# kernel "python3" is this interpreter (ipykernel's own kernel spec), so the wheel
# installed here is the one the notebook imports. A failing cell raises CellExecutionError.
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
nbformat.write(nb, out / notebook.name)
images = sum(
    1
    for cell in nb.cells
    if cell.cell_type == "code"
    for o in cell.get("outputs", [])
    if "image/png" in o.get("data", {})
)
assert images >= 2, f"{notebook}: {images} figures in the executed notebook, expected the profile and the dose–response"
print(f"{notebook}: {len(nb.cells)} cells executed in {time.time() - started:.0f} s, {images} figures, saved to {out / notebook.name}")
