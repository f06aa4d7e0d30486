"""Opens an ionfield OME-Zarr store in a real napari viewer and takes a screenshot:
xvfb-run -a python3 tests/readers/napari_view.py STORE SHOT.png VOXEL_UM (tests/napari_view.rs).

Checks what a researcher sees: one image layer per field, named `<scenario>: <field>
[unit]`, with scale (output interval s, voxel µm ×3) and units second/micrometer; the
tissue and vessels label layers in µm; the first field shown, the others hidden; the layer
data equal to the store read by zarr-python; the canvas of the last time at the middle z
slice not blank (the tumour's lower O2 against the normal tissue and capillaries).
Exit 1 on a failed check, 3 if a package is missing."""

import sys

try:
    import napari
    import numpy as np
    import zarr
except ImportError as e:
    print(f"MISSING PYTHON PACKAGE: {e!r}. Install with: python3 -m pip install -r tests/readers/requirements.txt",
          file=sys.stderr)
    sys.exit(3)

store, shot, voxel_um = sys.argv[1], sys.argv[2], float(sys.argv[3])
g = zarr.open_group(store, mode="r")
meta = g.attrs.asdict()["ionfield"]
times = meta["times_s"]
channels = meta["channels"]
viewer = napari.Viewer(show=True)
viewer.open(store, plugin="napari-ome-zarr")
images = [l for l in viewer.layers if type(l).__name__ == "Image"]
labels = {l.name.split("/")[-1]: l for l in viewer.layers if type(l).__name__ == "Labels"}
for l in viewer.layers:
    print(f"layer {type(l).__name__:6} {l.name!r:45} visible={l.visible} scale={tuple(float(s) for s in l.scale)} "
          f"units={tuple(str(u) for u in l.units)}")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


check(len(images) == len(channels), f"{len(images)} image layers for {len(channels)} fields")
dt = times[1] - times[0]
for layer, ch in zip(images, channels):
    check(layer.name.endswith(f"{ch['name']} [{ch['unit']}]"), f"layer {layer.name!r} for {ch}")
    check(tuple(float(s) for s in layer.scale) == (dt, voxel_um, voxel_um, voxel_um), f"{layer.name}: scale {layer.scale}")
    check(tuple(str(u) for u in layer.units) == ("second", "micrometer", "micrometer", "micrometer"),
          f"{layer.name}: units {layer.units}")
check([l.visible for l in images] == [True] + [False] * (len(images) - 1), "only the first field is shown")
check(sorted(labels) == ["tissue", "vessels"], f"label layers {sorted(labels)}")
for name, layer in labels.items():
    check(tuple(float(s) for s in layer.scale) == (voxel_um,) * 3, f"labels {name}: scale {layer.scale}")
first = images[0]
data = np.asarray(first.data[0] if isinstance(first.data, list) else first.data)
check(np.array_equal(data, g["0"][:, 0], equal_nan=True), "the first layer's data differ from the store")
nz = data.shape[1]
viewer.dims.set_point(0, times[-1])
viewer.dims.set_point(1, (nz // 2 + 0.5) * voxel_um)
img = viewer.screenshot(shot, canvas_only=True)
viewer.close()
grey = img[..., :3].astype(float).mean(axis=2)
levels = len(np.unique(img[..., 0]))
print(f"screenshot {shot}: {img.shape[1]}x{img.shape[0]} px, {levels} grey levels, std {grey.std():.1f}")
check(levels >= 5 and grey.std() > 10, "the canvas is blank or uniform")
if failures:
    print("napari: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"napari: {len(images)} image layers and {len(labels)} label layers in µm and s; all checks passed")
