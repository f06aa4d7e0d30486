"""Open an ionfield run folder in ParaView and save a picture of one field.

    pvbatch examples/paraview_open_run.py RUN_DIR [FIELD] [OUT.png]

(`xvfb-run -a pvbatch ...` on a machine without a display; Debian/Ubuntu: apt-get install
paraview python3-paraview.) The run needs `output.vti = true` (the default) and, for the
vessel centre lines, "vessels" in `output.fields`. Reads `vti/series.pvd` (every output
time, cell data in µm, one array per field named with its unit, e.g. `O2_mM`, plus the
`tissue_id` and `vessels` masks when asked for) and `vessels_centrelines.vtp` (one polyline
per capillary stretch, µm, cell data `radius_um` and `vessel`), prints what ParaView sees,
and renders the x–z slice through the middle of the block (a side view: the generated
capillaries run mostly along z) of FIELD at the last time with the centre lines within two voxels of it.

Not run by `cargo test` (ParaView is a 1.3 GB install); checked by hand with ParaView
5.11.0 (Debian bookworm, pvbatch under xvfb-run) on a 16³ × 80 µm run of the default.
"""
import os
import sys

from paraview import servermanager
from paraview.simple import (Clip, ColorBy, CreateRenderView, PVDReader,
                             SaveScreenshot, Show, Slice, XMLPolyDataReader)

run = sys.argv[1]
field = sys.argv[2] if len(sys.argv) > 2 else "pH"
picture = sys.argv[3] if len(sys.argv) > 3 else os.path.join(run, "paraview_" + field + ".png")

series = PVDReader(FileName=os.path.join(run, "vti", "series.pvd"))
series.UpdatePipelineInformation()
times_s = list(series.TimestepValues)
series.UpdatePipeline(times_s[-1])
image = servermanager.Fetch(series)
arrays = [series.CellData.GetArray(i).GetName() for i in range(len(series.CellData))]
bounds = series.GetDataInformation().GetBounds()
print("output times, s:", times_s)
print("voxel size, um:", image.GetSpacing(), " points per axis:", image.GetDimensions())
print("extent, um:", bounds)
print("cell arrays:", arrays)
names = [a for a in arrays if a == field or a.startswith(field + "_")]
if not names:
    sys.exit(f"{field} is not in {run}/vti (arrays: {', '.join(arrays)}); add it to output.fields")

view = CreateRenderView()
view.ViewSize = [900, 700]
cut = Slice(Input=series)
cut.SliceType = "Plane"
centre = [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]
cut.SliceType.Origin = centre
cut.SliceType.Normal = [0, 1, 0]
shown = Show(cut, view)
ColorBy(shown, ("CELLS", names[0]))
shown.RescaleTransferFunctionToDataRange(False, True)
shown.SetScalarBarVisibility(view, True)

lines_file = os.path.join(run, "vessels_centrelines.vtp")
if os.path.exists(lines_file):
    lines = XMLPolyDataReader(FileName=[lines_file])
    lines.UpdatePipeline()
    info = lines.GetDataInformation()
    print("centre lines:", info.GetNumberOfCells(), "polylines,", info.GetNumberOfPoints(),
          "points, extent um:", info.GetBounds())
    # Only the lines within two voxels of the slice: the rest of the block's capillaries
    # would hide it.
    near = Clip(Input=lines)
    near.ClipType = "Box"
    near.Exact = 1
    near.Invert = 1
    slab_um = 2 * image.GetSpacing()[1]
    near.ClipType.Position = [bounds[0], centre[1] - slab_um, bounds[4]]
    near.ClipType.Length = [bounds[1] - bounds[0], 2 * slab_um, bounds[5] - bounds[4]]
    drawn = Show(near, view)
    ColorBy(drawn, None)
    drawn.AmbientColor = drawn.DiffuseColor = [1.0, 1.0, 1.0]
    drawn.LineWidth = 1.5
else:
    print("no vessels_centrelines.vtp (add \"vessels\" to output.fields)")

# Far away with a narrow angle: nearly parallel rays, so lines above and below the slice
# keep their x, z.
view.CameraPosition = [centre[0], bounds[2] - 40 * (bounds[3] - bounds[2]), centre[2]]
view.CameraViewAngle = 2.0
view.CameraFocalPoint = centre
view.CameraViewUp = [0, 0, 1]
SaveScreenshot(picture, view)
print("picture:", picture)
