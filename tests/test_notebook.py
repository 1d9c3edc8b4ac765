"""experiments/notebooks/losses.ipynb runs end to end (so it cannot rot)."""

import os
import pathlib

import nbclient  # dev extras (pyproject.toml): nbclient, nbformat, ipykernel
import nbformat

NOTEBOOK = (
    pathlib.Path(__file__).resolve().parents[1] / "experiments" / "notebooks" / "losses.ipynb"
)


def test_losses_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "TV:" in text and "Huber TD loss" in text
