"""ionfield from Python: run a scenario, and open a run folder as an xarray Dataset.

    import ionfield
    out = ionfield.run("fe_fenton_cdt", out="runs/fe",
                       set={"grid.shape": [16, 16, 16], "grid.voxel_um": 80, "time.end": "2 h"})
    ds = ionfield.open_run(out)      # xarray.Dataset: dims (time, z, y, x), coordinates in µm and s
    ts = ionfield.timeseries(out)    # pandas.DataFrame, the tidy timeseries.csv

`run` and `resume` are the command line's `ionfield run` and `ionfield resume`, run in
this process by the same Rust code; `open_run` reads any run folder (finished,
interrupted or resumed) from its manifest.json and .npy fields.
"""

from ._native import GIT_COMMIT, IonfieldError, __version__
from ._dataset import open_run, timeseries, viability
from ._run import presets, resume, run

__all__ = [
    "GIT_COMMIT",
    "IonfieldError",
    "__version__",
    "open_run",
    "presets",
    "resume",
    "run",
    "timeseries",
    "viability",
]
