"""Checks of the ionfield Python package, run by tests/python.rs in a venv where the wheel
built from python/ is installed: python3 tests/python/check_package.py WORK_DIR.

Each check compares what the package returns with what the run wrote, read here by
numpy, json and csv alone, or with a second run: a failure raises AssertionError.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import ionfield
from ionfield import _native

WORK = Path(sys.argv[1])
# A 16³ block of 40 µm around the fe_fenton_cdt tumour, a short spin-up and 2 min of therapy
# in 1-min outputs: seconds a run.
SMALL = {
    "grid.shape": [16, 16, 16],
    "grid.voxel_um": 40.0,
    "time.spin_up": "1 min",
    "time.end": "2 min",
    "time.output_interval": "1 min",
    "output.slices": [8],
    "output.vti": False,
    "output.png16": False,
    "output.ranges_mm": {},  # the preset's fixed colour ranges name fields these runs leave out
}
FIELDS = ["O2", "pH", "Fe2", "OH", "viab"]  # the preset's figure needs these


def check_run_and_dataset():
    lines = []
    out = ionfield.run(
        "fe_fenton_cdt",
        out=WORK / "small",
        set=dict(SMALL, **{"output.fields": FIELDS + ["tissue", "vessels"]}),
        backend="cpu",
        progress=lines.append,
    )
    assert out == WORK / "small"
    assert any(line.startswith("spin-up") for line in lines), lines
    assert lines[-1].startswith("t = 2 min of 2 min"), lines[-1]

    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete"
    ds = ionfield.open_run(out)
    assert isinstance(ds, xr.Dataset)
    times = [o["time_s"] for o in m["outputs"]]
    assert list(ds["time"].values) == times == [0.0, 60.0, 120.0], ds["time"].values
    assert ds["time"].attrs["units"] == "s"
    # voxel centres in µm
    for axis in "xyz":
        c = ds[axis].values
        assert ds[axis].attrs["units"] == "µm"
        assert np.allclose(c, (np.arange(16) + 0.5) * 40.0), (axis, c)
    # every written field, bitwise equal to its .npy, in the manifest's unit
    npys = [f for f in m["files"] if f["kind"] == "npy" and f["field"] not in ("tissue", "vessels")]
    assert sum(f["field"] in FIELDS for f in npys) == len(FIELDS) * 3, npys
    assert "time_of_death" in ds and ds["time_of_death"].attrs["units"] == "s"
    for f in npys:
        on_disk = np.load(out / f["path"])
        got = ds[f["field"]].sel(time=f["time_s"]).values
        assert got.dtype == np.float32 and got.shape == (16, 16, 16)
        assert np.array_equal(got, on_disk, equal_nan=True), f["path"]
        assert ds[f["field"]].attrs["units"] == f["unit"]
        assert ds[f["field"]].dims == ("time", "z", "y", "x")
    # the masks the run wrote, and the same masks rebuilt from config.resolved.toml
    written = {name: np.load(out / "fields" / f"{name}_t0000000.0s.npy") for name in ("tissue", "vessels")}
    rebuilt = _native.masks(str(out))
    assert tuple(rebuilt["shape"]) == (16, 16, 16)
    for name in ("tissue", "vessels"):
        r = np.frombuffer(rebuilt[name], dtype=np.uint8).reshape(16, 16, 16)
        assert np.array_equal(r.astype(np.float32), written[name]), name
        assert np.array_equal(ds[name].values, r), name
        assert ds[name].dims == ("z", "y", "x")
    assert rebuilt["tissues"] == ["normal", "tumour"]
    assert ds["tissue"].attrs["flag_meanings"] == "normal tumour"
    assert 0 < int(ds["vessels"].sum()) < 16**3 // 2
    assert 0 < int((ds["tissue"] == 1).sum()) < 16**3
    # attributes
    assert ds.attrs["scenario"] == "fe_fenton_cdt" and ds.attrs["status"] == "complete"
    assert ds.attrs["backend"] == "cpu"
    assert ds.attrs["config_resolved_toml"] == (out / "config.resolved.toml").read_text()
    cmd = json.loads(ds.attrs["provenance_json"])["command_lines"][0]
    assert cmd[:3] == ["ionfield", "run", "fe_fenton_cdt"], cmd
    # the time series as a DataFrame, against the CSV read by the csv module
    df = ionfield.timeseries(out)
    with open(out / "timeseries.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(df) == len(rows) and list(df.columns[:2]) == ["time_s", "time_h"]
    for i in (0, len(rows) // 2, len(rows) - 1):
        assert float(rows[i]["value"]) == df["value"].iloc[i]
        assert rows[i]["field"] == df["field"].iloc[i]
    assert np.allclose(df["time_h"], df["time_s"] / 3600.0)
    v = ionfield.viability(out)
    assert isinstance(v, pd.DataFrame) and len(v) > 0
    print(f"run and open_run: {len(npys)} fields × times bitwise equal, masks equal, {len(rows)} time-series rows")
    return ds


def check_masks_without_mask_outputs(reference):
    """A run that did not write masks gets them rebuilt: equal to those written above."""
    out = ionfield.run("fe_fenton_cdt", out=WORK / "nomasks", set=dict(SMALL, **{"output.fields": FIELDS}),
                       backend="cpu", progress=False)
    ds = ionfield.open_run(out)
    assert sorted(ds.data_vars) == sorted(FIELDS + ["time_of_death", "tissue", "vessels"]), list(ds.data_vars)
    assert np.array_equal(ds["tissue"].values, reference["tissue"].values)
    assert np.array_equal(ds["vessels"].values, reference["vessels"].values)
    assert np.array_equal(ds["O2"].values, reference["O2"].values)
    print("masks rebuilt for a run that did not write them: equal")


def check_zarr_only_run(reference):
    """A run that wrote its fields only to the OME-Zarr store opens the same as one with
    .npy files: every variable bitwise, the masks from the store's labels."""
    out = ionfield.run("fe_fenton_cdt", out=WORK / "zarronly",
                       set=dict(SMALL, **{"output.fields": FIELDS, "output.npy": False}),
                       backend="cpu", progress=False)
    m = json.loads((out / "manifest.json").read_text())
    assert not any(f["kind"] == "npy" for f in m["files"])
    ds = ionfield.open_run(out)
    assert sorted(ds.data_vars) == sorted(reference.data_vars), (list(ds.data_vars), list(reference.data_vars))
    for name in ds.data_vars:
        assert ds[name].dims == reference[name].dims, name
        assert np.array_equal(ds[name].values, reference[name].values, equal_nan=True), name
        assert ds[name].attrs["units"] == reference[name].attrs["units"], name
    assert list(ds["time"].values) == list(reference["time"].values)
    print("output.npy = false: opened from fields.ome.zarr, bitwise equal to the npy run")


def check_stop_and_resume(reference):
    """A run stopped at 90 s opens with the times it finished (0 and 60 s); resumed, it
    equals the run that was never stopped, bit for bit."""
    out = WORK / "stopped"
    ionfield.run("fe_fenton_cdt", out=out, set=dict(SMALL, **{"output.fields": FIELDS}),
                 backend="cpu", progress=False, stop_at=90)
    part = ionfield.open_run(out)
    assert part.attrs["status"] == "stopped", part.attrs["status"]
    assert list(part["time"].values) == [0.0, 60.0], part["time"].values
    assert (out / "checkpoint" / "state.ifck").exists()
    ionfield.resume(out, progress=False)
    full = ionfield.open_run(out)
    assert full.attrs["status"] == "complete"
    for name in FIELDS:
        assert np.array_equal(full[name].values, reference[name].values, equal_nan=True), name
    print("stopped at 90 s: 2 times; resumed: bitwise equal to the uninterrupted run")


def check_errors():
    # bad input: the command line's message and exit code 2, as an exception
    try:
        ionfield.run("fe_fenton_cdt", out=WORK / "bad", set={"grid.voxel_um": -5.0}, progress=False)
    except ionfield.IonfieldError as e:
        message, code = e.args
        assert code == 2, e.args
        assert "grid.voxel_um" in message and "Fix" in message, message
    else:
        raise AssertionError("a negative voxel size was accepted")
    try:
        ionfield.run("no_such_preset", out=WORK / "bad2", progress=False)
    except ionfield.IonfieldError as e:
        assert e.args[1] == 2 and "no_such_preset" in e.args[0], e.args
    else:
        raise AssertionError("an unknown preset was accepted")
    try:
        ionfield.run("fe_fenton_cdt", out=WORK / "bad3", set={"grid.shape": object()}, progress=False)
    except TypeError as e:
        assert "grid.shape" in str(e), e
    else:
        raise AssertionError("an object was accepted as a config value")
    try:
        ionfield.open_run(WORK / "nowhere")
    except FileNotFoundError as e:
        assert "manifest.json" in str(e) and "Fix" in str(e), e
    else:
        raise AssertionError("open_run of a folder without a run did not fail")
    print("errors: exit code 2 with the field and a fix; TypeError; FileNotFoundError")


def check_presets():
    p = ionfield.presets()
    assert "fe_fenton_cdt_day" in p and "pt_cisplatin" in p, sorted(p)
    assert all(isinstance(d, str) and d for d in p.values())
    print(f"presets: {len(p)}")


if __name__ == "__main__":
    WORK.mkdir(parents=True, exist_ok=True)
    reference = check_run_and_dataset()
    check_masks_without_mask_outputs(reference)
    check_zarr_only_run(reference)
    check_stop_and_resume(reference)
    check_errors()
    check_presets()
    print("python package: all checks passed")
