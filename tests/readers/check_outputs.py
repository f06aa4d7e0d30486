#!/usr/bin/env python3
"""Reads an ionfield run back with independent readers and checks it against references.

Usage: python3 tests/readers/check_outputs.py RUN_DIR REF_DIR

RUN_DIR is the run's output folder (manifest.json, fields/, vti/, tiff/). REF_DIR holds
`expect.json` (grid, output times, fields, probe voxels) and, for some fields, a reference
`<field>_<tag>.f32`: the field as the test's own engine read it back from the device
(little-endian f32, x fastest), written without any of ionfield's writers.

Readers: numpy (`.npy`), VTK's vtkXMLImageDataReader (`.vti`), tifffile (`.tif`), the
standard library's XML parser (`series.pvd`), zarr-python and ome-zarr-py (the OME-Zarr
store) and hashlib (manifest checksums).

Checks, per output time and field:
  * npy: dtype float32, shape (nz, ny, nx); bitwise equal to the reference where there is
    one; a known analytic value where the test gives one (e.g. the t = 0 initial condition,
    a uniform field, pH of a uniform H).
  * tif: an ImageJ file, one series of shape (nz, ny, nx) float32; ImageJ metadata
    images = slices = nz, unit micron, spacing = voxel µm, min/max = the manifest's lo/hi,
    vunit = the field's unit; XResolution = YResolution = 1/voxel µm, ResolutionUnit none;
    values bitwise equal to the npy; page k row j column i = voxel (i, j, k) at probes.
  * vti: dimensions (nx+1, ny+1, nz+1) points, nx·ny·nz cells, spacing = voxel µm, origin
    0; the CellData array named <field>_<unit> bitwise equal to the npy (cells x fastest);
    VTK's own ComputeCellId((i, j, k)) gives the probe values; TimeValue = the time in s.
  * series.pvd: one DataSet per output time with timestep = time in s and the .vti file.
  * fields.ome.zarr, validated by the NGFF 0.5 models of ome-zarr-models and read by
    zarr-python and ome-zarr-py's Reader: the image (t, c, z, y, x) float32 with every field at every time bitwise
    equal to its npy, channel names and units, the exact times; NGFF axes with units
    second/micrometer, scale (interval, 1, voxel, voxel, voxel), translation of half a
    voxel; the tissue and vessels label images (nz, ny, nx) uint8.
  * manifest.json: every npy/tiff/vti/pvd/zarr file listed with its size and SHA-256.

Exit codes: 0 all checks passed (the last line says how many); 1 a check failed;
3 a Python package is missing (the message says how to install them).
"""

import hashlib
import json
import math
import os
import sys
import xml.etree.ElementTree as ET

INSTALL = "python3 -m pip install -r tests/readers/requirements.txt"

try:
    import numpy as np
    import tifffile
    # Only VTK's core and XML I/O modules: no rendering libraries (GL, X11) are loaded,
    # so this works on a headless machine.
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkVersion
    from vtkmodules.vtkIOXML import vtkXMLImageDataReader
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    from ome_zarr_models import open_ome_zarr
    from ome_zarr_models.v05.image import Image as NgffImage
    from ome_zarr_models.v05.image_label import ImageLabel as NgffImageLabel
except ImportError as e:  # also covers a vtk wheel whose shared libraries fail to load
    print(
        f"MISSING PYTHON PACKAGE: {e!r} (python {sys.executable}). "
        f"Install the pinned readers with: {INSTALL}",
        file=sys.stderr,
    )
    sys.exit(3)


class Checks:
    def __init__(self):
        self.n = 0
        self.failures = []

    def ok(self, cond, what):
        self.n += 1
        if not cond:
            self.failures.append(what)
            print(f"FAIL: {what}", file=sys.stderr)
        return cond


def bits(a):
    """The f32 values as uint32, so equality is bitwise (NaN included)."""
    return np.ascontiguousarray(a, dtype="<f4").view("<u4")


def main(run_dir, ref_dir):
    c = Checks()
    with open(os.path.join(ref_dir, "expect.json")) as f:
        ex = json.load(f)
    nx, ny, nz = ex["shape"]
    h = ex["voxel_um"]
    shape = (nz, ny, nx)
    with open(os.path.join(run_dir, "manifest.json")) as f:
        manifest = json.load(f)
    files = {r["path"]: r for r in manifest["files"]}
    print(
        f"readers: numpy {np.__version__}, tifffile {tifffile.__version__}, "
        f"vtk {vtkVersion.GetVTKVersion()}; grid {nx}x{ny}x{nz}, voxel {h} um"
    )

    # Manifest: sizes and checksums of every file this script reads.
    for rel, rec in files.items():
        if rec["kind"] not in ("npy", "tiff", "vti", "pvd", "zarr"):
            continue
        with open(os.path.join(run_dir, rel), "rb") as f:
            data = f.read()
        c.ok(len(data) == rec["bytes"], f"{rel}: size {len(data)} != manifest {rec['bytes']}")
        c.ok(
            hashlib.sha256(data).hexdigest() == rec["sha256"],
            f"{rel}: sha256 differs from the manifest",
        )

    n_files = 0
    for out in ex["outputs"]:
        t, tag = out["time_s"], out["tag"]

        # --- VTK ImageData: every field of this time ---
        vti_rel = f"vti/fields_{tag}.vti"
        c.ok(vti_rel in files and files[vti_rel]["kind"] == "vti", f"{vti_rel} not in manifest")
        reader = vtkXMLImageDataReader()
        reader.SetFileName(os.path.join(run_dir, vti_rel))
        reader.Update()
        img = reader.GetOutput()
        n_files += 1
        c.ok(img.GetDimensions() == (nx + 1, ny + 1, nz + 1), f"{vti_rel}: dimensions {img.GetDimensions()}")
        c.ok(img.GetNumberOfCells() == nx * ny * nz, f"{vti_rel}: {img.GetNumberOfCells()} cells")
        c.ok(
            all(math.isclose(s, h, rel_tol=1e-12) for s in img.GetSpacing()),
            f"{vti_rel}: spacing {img.GetSpacing()} != {h} um",
        )
        c.ok(img.GetOrigin() == (0.0, 0.0, 0.0), f"{vti_rel}: origin {img.GetOrigin()}")
        tv = img.GetFieldData().GetArray("TimeValue")
        c.ok(tv is not None and tv.GetValue(0) == t, f"{vti_rel}: TimeValue != {t}")
        cell_data = img.GetCellData()
        names = [cell_data.GetArrayName(i) for i in range(cell_data.GetNumberOfArrays())]
        c.ok(names == [f["array"] for f in ex["fields"]], f"{vti_rel}: arrays {names}")

        for fld in ex["fields"]:
            name, unit = fld["name"], fld["unit"]

            # --- npy ---
            npy_rel = f"fields/{name}_{tag}.npy"
            a = np.load(os.path.join(run_dir, npy_rel))
            n_files += 1
            c.ok(a.dtype == np.dtype("<f4"), f"{npy_rel}: dtype {a.dtype}")
            c.ok(a.shape == shape, f"{npy_rel}: shape {a.shape} != {shape}")
            ref_path = os.path.join(ref_dir, f"{name}_{tag}.f32")
            if os.path.exists(ref_path):
                ref = np.fromfile(ref_path, dtype="<f4").reshape(shape)
                same = np.array_equal(bits(a), bits(ref))
                c.ok(same, f"{npy_rel}: differs from the engine's read-back (max |diff| "
                     f"{np.nanmax(np.abs(a.astype(float) - ref)) if a.shape == ref.shape else 'n/a'})")
                print(f"  {npy_rel}: == engine read-back, bitwise ({a.size} values)")
            for known in fld.get("known", []):
                if known["tag"] != tag:
                    continue
                if known["kind"] == "box":
                    # Voxel (i, j, k) is inside when its centre ((i + 0.5)·h, …) is in the box.
                    centres = [(np.arange(n) + 0.5) * h for n in (nz, ny, nx)]
                    zc, yc, xc = np.meshgrid(*centres, indexing="ij")
                    (x0, y0, z0), (x1, y1, z1) = known["min_um"], known["max_um"]
                    inside = (xc >= x0) & (xc <= x1) & (yc >= y0) & (yc <= y1) & (zc >= z0) & (zc <= z1)
                    want = np.where(inside, np.float32(known["inside"]), np.float32(known["outside"])).astype("<f4")
                    c.ok(np.array_equal(bits(a), bits(want)),
                         f"{npy_rel}: != {known['what']} ({int((bits(a) != bits(want)).sum())} voxels differ)")
                else:
                    err = float(np.max(np.abs(a.astype(np.float64) - known["value"])))
                    c.ok(err <= known["tol"], f"{npy_rel}: max |value - {known['value']}| = {err} > {known['tol']}")
                print(f"  {npy_rel}: analytic check: {known['what']}")

            # --- TIFF ---
            tif_rel = f"tiff/{name}_{tag}.tif"
            rec = files.get(tif_rel)
            c.ok(rec is not None and rec["kind"] == "tiff", f"{tif_rel} not in manifest")
            with tifffile.TiffFile(os.path.join(run_dir, tif_rel)) as tif:
                n_files += 1
                c.ok(tif.is_imagej, f"{tif_rel}: not recognised as an ImageJ file")
                c.ok(len(tif.series) == 1, f"{tif_rel}: {len(tif.series)} series")
                s = tif.series[0]
                c.ok(s.shape == shape and s.dtype == np.float32,
                     f"{tif_rel}: series {s.shape} {s.dtype} != {shape} float32")
                c.ok(len(tif.pages) == nz, f"{tif_rel}: {len(tif.pages)} pages != nz {nz}")
                md = tif.imagej_metadata or {}
                c.ok(md.get("images") == nz and md.get("slices") == nz,
                     f"{tif_rel}: images/slices {md.get('images')}/{md.get('slices')} != {nz}")
                c.ok(md.get("unit") == "micron", f"{tif_rel}: unit {md.get('unit')!r}")
                c.ok(math.isclose(float(md.get("spacing", -1)), h, rel_tol=1e-12),
                     f"{tif_rel}: spacing {md.get('spacing')} != {h}")
                if rec is not None:
                    c.ok(float(md.get("min", math.nan)) == rec["lo"] and float(md.get("max", math.nan)) == rec["hi"],
                         f"{tif_rel}: min/max {md.get('min')}/{md.get('max')} != manifest {rec['lo']}/{rec['hi']}")
                c.ok(str(md.get("vunit")) == unit, f"{tif_rel}: vunit {md.get('vunit')!r} != {unit!r}")
                p0 = tif.pages[0]
                for key in ("XResolution", "YResolution"):
                    num, den = p0.tags[key].value
                    c.ok(math.isclose(den / num, h, rel_tol=1e-9),
                         f"{tif_rel}: {key} {num}/{den} px/um is not 1/{h}")
                c.ok(int(p0.tags["ResolutionUnit"].value) == 1, f"{tif_rel}: ResolutionUnit != 1 (none)")
                c.ok(int(p0.tags["SampleFormat"].value) == 3 and p0.tags["BitsPerSample"].value == 32,
                     f"{tif_rel}: not 32-bit float")
                d = tif.asarray()
                c.ok(d.shape == shape and np.array_equal(bits(d), bits(a)), f"{tif_rel}: values differ from {npy_rel}")
                for pr in ex["probes"]:
                    i, j, k = pr
                    page = tif.pages[k].asarray()
                    c.ok(bits(page[j, i]) == bits(a[k, j, i]), f"{tif_rel}: page {k} row {j} col {i} != voxel ({i},{j},{k})")

            # --- the VTI array of this field ---
            arr = cell_data.GetArray(fld["array"])
            if c.ok(arr is not None, f"{vti_rel}: no array {fld['array']}"):
                v = vtk_to_numpy(arr)
                c.ok(v.dtype == np.float32 and v.size == a.size, f"{vti_rel}:{fld['array']} dtype/size {v.dtype}/{v.size}")
                c.ok(np.array_equal(bits(v.reshape(shape)), bits(a)), f"{vti_rel}:{fld['array']} differs from {npy_rel}")
                for pr in ex["probes"]:
                    i, j, k = pr
                    cid = img.ComputeCellId([i, j, k])
                    c.ok(bits(np.float32(arr.GetValue(cid))) == bits(a[k, j, i]),
                         f"{vti_rel}:{fld['array']} cell ({i},{j},{k}) != npy a[{k},{j},{i}]")
        print(f"  t = {t} s: npy, tif, vti of {len(ex['fields'])} fields agree bitwise; "
              f"tif/vti geometry {nz}x{ny}x{nx} at {h} um")

    # --- series.pvd ---
    pvd_rel = "vti/series.pvd"
    c.ok(pvd_rel in files and files[pvd_rel]["kind"] == "pvd", "vti/series.pvd not in manifest")
    root = ET.parse(os.path.join(run_dir, pvd_rel)).getroot()
    n_files += 1
    c.ok(root.get("type") == "Collection", "series.pvd: not a Collection")
    ds = root.findall("./Collection/DataSet")
    got = [(float(d.get("timestep")), d.get("file")) for d in ds]
    want = [(o["time_s"], f"fields_{o['tag']}.vti") for o in ex["outputs"]]
    c.ok(got == want, f"series.pvd: {got} != {want}")
    for _, f in got:
        c.ok(os.path.isfile(os.path.join(run_dir, "vti", f)), f"series.pvd lists missing {f}")

    n_files += check_ome_zarr(c, run_dir, ex, files, shape, h)

    if c.failures:
        print(f"readers: {len(c.failures)} of {c.n} checks FAILED", file=sys.stderr)
        return 1
    print(f"readers: all {c.n} checks passed on {n_files} files")
    return 0


def check_ome_zarr(c, run_dir, ex, files, shape, h):
    """The OME-Zarr store against the npy files; returns the number of store files."""
    store = os.path.join(run_dir, "fields.ome.zarr")
    g = zarr.open_group(store, mode="r")
    img = g["0"]
    meta = g.attrs.asdict()
    names = [ch["name"] for ch in meta["ionfield"]["channels"]]
    units = [ch["unit"] for ch in meta["ionfield"]["channels"]]
    times = meta["ionfield"]["times_s"]
    c.ok(img.dtype == np.float32 and tuple(img.shape[2:]) == shape and img.shape[0] == len(times)
         and img.shape[1] == len(names), f"fields.ome.zarr/0: {img.dtype} {img.shape}")
    c.ok(tuple(img.metadata.dimension_names) == ("t", "c", "z", "y", "x"), "dimension names")
    c.ok(times == [o["time_s"] for o in ex["outputs"]], f"zarr times {times}")
    compared = 0
    for rel, rec in files.items():
        if rec["kind"] != "npy":
            continue
        if not c.ok(rec["field"] in names, f"zarr: no channel {rec['field']}"):
            continue
        ci = names.index(rec["field"])
        c.ok(units[ci] == rec["unit"], f"zarr: unit of {rec['field']} {units[ci]} != {rec['unit']}")
        a = np.load(os.path.join(run_dir, rel))
        z = img[times.index(rec["time_s"]), ci]
        c.ok(np.array_equal(bits(z), bits(a)), f"zarr: {rec['field']} at {rec['time_s']} s differs from {rel}")
        compared += 1
    c.ok(compared > 0, "zarr: nothing compared")
    # The NGFF 0.5 models (ome-zarr-models, pydantic) validate the image and each label
    # image: a store that breaks the spec raises here.
    c.ok(isinstance(open_ome_zarr(g), NgffImage), "fields.ome.zarr is not a valid NGFF 0.5 image")
    for name in ("tissue", "vessels"):
        lab = open_ome_zarr(zarr.open_group(os.path.join(store, "labels", name), mode="r"))
        c.ok(isinstance(lab, NgffImageLabel), f"labels/{name} is not a valid NGFF 0.5 image-label")
    # ome-zarr-py's reader: the image node, its axes and scale; the label nodes
    nodes = list(Reader(parse_url(store))())
    image = nodes[0]
    axes = image.metadata["axes"]
    c.ok([a["name"] for a in axes] == ["t", "c", "z", "y", "x"], f"ome-zarr axes {axes}")
    c.ok([a.get("unit") for a in axes] == ["second", None, "micrometer", "micrometer", "micrometer"],
         f"ome-zarr units {axes}")
    scale, translation = image.metadata["coordinateTransformations"][0]
    c.ok(scale["scale"][2:] == [h, h, h], f"ome-zarr scale {scale}")
    c.ok(translation["translation"][2:] == [h / 2, h / 2, h / 2], f"ome-zarr translation {translation}")
    c.ok(tuple(image.data[0].shape) == tuple(img.shape), "ome-zarr image shape")
    labels = {n.zarr.path.rstrip("/").split("/")[-1]: n for n in nodes[1:] if n.data}
    c.ok(sorted(labels) == ["tissue", "vessels"], f"ome-zarr labels {sorted(labels)}")
    for name, node in labels.items():
        d = np.asarray(node.data[0])
        c.ok(d.dtype == np.uint8 and d.shape == shape, f"label {name}: {d.dtype} {d.shape}")
    n_store = sum(1 for r in files if r.startswith("fields.ome.zarr/"))
    on_disk = sum(len(fs) for _, _, fs in os.walk(store))
    c.ok(n_store == on_disk, f"zarr: manifest lists {n_store} store files, {on_disk} on disk")
    print(f"  fields.ome.zarr: {compared} field-times bitwise equal to the npy; NGFF 0.5 valid; axes, scale, "
          f"labels read by ome-zarr {len(nodes)} nodes; {on_disk} files")
    return on_disk


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
