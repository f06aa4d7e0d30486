//! The OME-Zarr store opened in a real napari viewer (napari-ome-zarr, Qt under Xvfb with
//! Mesa's software OpenGL), as a researcher would: `tests/readers/napari_view.py` checks the
//! layers (one per field, named with its unit; scale in s and µm; the tissue and vessel
//! label layers), that the data napari holds equal the store, and takes a screenshot of O2
//! at the last time through the middle of the tumour, which must not be blank. The
//! screenshot is kept at `$CARGO_TARGET_TMPDIR/napari_view.png` to be looked at.
//!
//! Needs `xvfb-run` (Debian's xvfb and xauth, with libgl1-mesa-dri and Qt's xcb libraries,
//! as .ci/run installs) and napari, PyQt5 and napari-ome-zarr
//! (`python3 -m pip install -r tests/readers/requirements.txt`). Without them the test
//! fails and says so.

mod common;

use std::process::Command;

#[test]
fn ome_zarr_store_opens_in_napari_with_layers_in_micrometres_and_seconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let args = [
        "run",
        "fe_fenton_cdt",
        "--backend",
        "cpu",
        "--out",
        run.to_str().unwrap(),
        "--set",
        "grid.shape=[16,16,16]",
        "--set",
        "grid.voxel_um=40",
        "--set",
        "time.spin_up_s=60",
        "--set",
        "time.end_s=60",
        "--set",
        "time.output_interval_s=30",
        "--set",
        "output.slices=[8]",
        "--set",
        "output.png16=false",
        "--set",
        "output.vti=false",
    ];
    let out = common::ionfield(dir.path(), &args);
    assert_eq!(out.code, 0, "the run failed:\n{}", out.stderr);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("napari_view.png");
    let python = std::env::var("IONFIELD_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers/napari_view.py");
    let result = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x1024x24", &python])
        .arg(&script)
        .arg(run.join("fields.ome.zarr"))
        .arg(&shot)
        .arg("40")
        .env("QT_QPA_PLATFORM", "xcb")
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start xvfb-run ({e}). Install it: apt-get install -y xvfb xauth libgl1-mesa-dri (see .ci/run)")
        });
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    eprintln!("{stdout}");
    assert!(
        result.status.success(),
        "napari could not show the store as it should (exit {:?}):\n{stdout}\n{stderr}",
        result.status.code()
    );
    assert!(
        stdout.contains("all checks passed"),
        "napari_view.py did not report its checks:\n{stdout}\n{stderr}"
    );
    eprintln!("screenshot: {}", shot.display());
}
