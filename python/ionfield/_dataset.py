"""Reading a run folder: `open_run` (xarray), `timeseries` and `viability` (pandas).

Everything is read from what the run wrote: `manifest.json` (which files exist, at which
model times, in which units), the `.npy` fields (f32, shape (nz, ny, nx), x fastest) or,
for a run without them (`output.npy = false`), the OME-Zarr store `fields.ome.zarr`
(zarr-python ≥ 3), and the CSV files. A run that was interrupted or is still going has a
manifest that lists the files it finished, and only those are read.
"""

import json
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
import xarray as xr

from . import _native

MASKS = ("tissue", "vessels")


def _manifest(path: Path) -> dict:
    file = path / "manifest.json"
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{file}: no manifest.json. Fix: give the folder a run wrote (`ionfield run --out DIR`); "
            "a run writes its manifest at its first output time"
        ) from None


def _coords(grid: dict, times_s: list) -> dict:
    """Voxel-centre coordinates in µm and output times in s (and h)."""
    dx = float(grid["voxel_um"])
    coords = {}
    for axis, n in (("x", grid["nx"]), ("y", grid["ny"]), ("z", grid["nz"])):
        coords[axis] = (
            axis,
            (np.arange(n) + 0.5) * dx,
            {"units": "µm", "long_name": f"{axis} (voxel centre)"},
        )
    t = np.asarray(times_s, dtype=float)
    coords["time"] = ("time", t, {"units": "s", "long_name": "model time after the spin-up"})
    coords["time_h"] = ("time", t / 3600.0, {"units": "h", "long_name": "model time after the spin-up"})
    return coords


def _mask_vars(path: Path, written: dict, tissues: list, shape: tuple, stored: dict) -> dict:
    """The tissue and vessel masks: as written by the run (npy, else the OME-Zarr labels
    in `stored`), else rebuilt from its scenario."""
    arrays = dict(stored)
    for name in MASKS:
        if name in written:
            first = written[name][min(written[name])]
            arrays[name] = np.load(path / first["path"]).astype(np.uint8)
    if len(arrays) < len(MASKS):
        try:
            rebuilt = _native.masks(os.fspath(path))
        except _native.IonfieldError as e:
            warnings.warn(
                f"{path}: the tissue and vessel masks could not be rebuilt from config.resolved.toml "
                f"({e.args[0]}); the Dataset has no masks. Fix: list \"tissue\" and \"vessels\" in "
                "output.fields so the run writes them"
            )
            rebuilt = None
        if rebuilt is not None:
            if tuple(rebuilt["shape"]) != shape:
                raise ValueError(f"{path}: masks of shape {rebuilt['shape']} for fields of shape {shape}")
            for name in MASKS:
                if name not in arrays:
                    arrays[name] = np.frombuffer(rebuilt[name], dtype=np.uint8).reshape(shape)
    out = {}
    if "tissue" in arrays:
        out["tissue"] = (
            ("z", "y", "x"),
            arrays["tissue"],
            {
                "units": "1",
                "long_name": "tissue label",
                "flag_values": np.arange(len(tissues), dtype=np.uint8),
                "flag_meanings": " ".join(tissues),
            },
        )
    if "vessels" in arrays:
        out["vessels"] = (
            ("z", "y", "x"),
            arrays["vessels"],
            {"units": "1", "long_name": "inside a vessel (1) or not (0)"},
        )
    return out


def _from_zarr(path: Path) -> tuple:
    """(times, {name: (unit, values (t, z, y, x))}, {mask: values (z, y, x)}) from the
    run's OME-Zarr store."""
    try:
        import zarr
    except ImportError:
        raise ImportError(
            f"{path}: the run wrote its 3D fields only to fields.ome.zarr; reading it needs "
            "zarr-python >= 3 (Python >= 3.11). Fix: python3 -m pip install 'zarr>=3'"
        ) from None
    g = zarr.open_group(str(path / "fields.ome.zarr"), mode="r")
    meta = g.attrs.asdict()["ionfield"]
    image = g["0"]
    fields = {c["name"]: (c["unit"], image[:, i]) for i, c in enumerate(meta["channels"])}
    masks = {}
    for name in MASKS:
        if f"labels/{name}/0" in g:
            masks[name] = np.asarray(g[f"labels/{name}/0"][:], dtype=np.uint8)
    return list(meta["times_s"]), fields, masks


def open_run(path: Union[str, os.PathLike]) -> xr.Dataset:
    """The fields of the run in `path` as an xarray.Dataset.

    Dimensions (time, z, y, x); coordinates x, y, z at voxel centres in µm, time in s (and
    time_h in h) after the spin-up. One f32 variable per written field (species in mM,
    pH, viab, MRI and fluorescence readouts; `units` attribute as in the manifest), NaN at
    times a field was not written. `tissue` (label per voxel; flag_values and flag_meanings
    name the tissues) and `vessels` (1 inside a vessel) have dimensions (z, y, x). The
    attributes hold the scenario name, run status, ionfield version and commit, backend,
    the resolved config (TOML text) and the provenance (JSON text).
    """
    path = Path(path)
    m = _manifest(path)
    scenario = m["scenario"]
    grid = scenario["grid"]
    shape = (grid["nz"], grid["ny"], grid["nx"])
    written: dict = {}
    for f in m["files"]:
        if f["kind"] == "npy":
            written.setdefault(f["field"], {})[f["time_s"]] = f
    times = sorted({t for name, per in written.items() if name not in MASKS for t in per})
    index = {t: i for i, t in enumerate(times)}
    data_vars = {}
    for name, per in written.items():
        if name in MASKS:
            continue
        values = np.full((len(times),) + shape, np.nan, dtype=np.float32)
        for t, f in per.items():
            values[index[t]] = np.load(path / f["path"])
        unit = next(iter(per.values()))["unit"]
        data_vars[name] = (("time", "z", "y", "x"), values, {"units": unit, "long_name": name})
    stored_masks = {}
    if not data_vars and any(f["path"].startswith("fields.ome.zarr/") for f in m["files"]):
        times, fields, stored_masks = _from_zarr(path)
        for name, (unit, values) in fields.items():
            data_vars[name] = (("time", "z", "y", "x"), values, {"units": unit, "long_name": name})
    tissues = [t["name"] for t in scenario.get("tissues", [])]
    data_vars.update(_mask_vars(path, written, tissues, shape, stored_masks))
    config = path / "config.resolved.toml"
    attrs = {
        "scenario": scenario.get("name", ""),
        "description": scenario.get("description", ""),
        "status": m.get("status", ""),
        "ionfield_version": m.get("ionfield_version", ""),
        "git_commit": m.get("git_commit", ""),
        "backend": m.get("backend", ""),
        "adapter": m.get("adapter", ""),
        "voxel_um": float(grid["voxel_um"]),
        "run_folder": os.fspath(path.resolve()),
        "config_resolved_toml": config.read_text(encoding="utf-8") if config.exists() else "",
        "provenance_json": json.dumps(m.get("provenance", {})),
    }
    return xr.Dataset(data_vars, coords=_coords(grid, times), attrs=attrs)


def timeseries(path: Union[str, os.PathLike]) -> pd.DataFrame:
    """timeseries.csv of the run in `path` (tidy: time_s, probe, field, unit, statistic,
    value), with time_h added."""
    df = pd.read_csv(Path(path) / "timeseries.csv")
    df.insert(1, "time_h", df["time_s"] / 3600.0)
    return df


def viability(path: Union[str, os.PathLike]) -> pd.DataFrame:
    """viability.csv of the run in `path` (per tissue and output time)."""
    return pd.read_csv(Path(path) / "viability.csv")
