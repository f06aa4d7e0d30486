//! The field files read back by tools that share no code with ionfield: numpy (`.npy`),
//! VTK's `vtkXMLImageDataReader` (`.vti`) and tifffile (`.tif`), driven by
//! `tests/readers/check_outputs.py`; zarr-python and ome-zarr-py (napari's reader) read the
//! OME-Zarr store `fields.ome.zarr`.
//!
//! The `ionfield` binary runs a small scenario on a non-cubic 12×10×8 grid (so a swapped
//! axis shows) with npy, vti and tiff on. The test then gets its own reference: the same
//! scenario and schedule on its own CPU engine, the fields read back from the engine and
//! written as raw little-endian f32 without any of ionfield's writers. The script checks
//!   * every `.npy` bitwise against that read-back (species A and H at every time);
//!   * analytic values: A at t = 0 is the initial box (2 mM inside, 0.1 mM outside, from
//!     voxel centres computed in Python), H stays 1e-4 mM (uniform, zero flux), pH = 7;
//!   * `.tif` and `.vti` bitwise against the `.npy`, their geometry (shape (nz, ny, nx),
//!     VTK dimensions, spacing = voxel µm, ImageJ calibration, resolution tags), and
//!     probe voxels addressed in each reader's own terms (TIFF page/row/column, VTK
//!     ComputeCellId) against the engine's value at i + nx·(j + ny·k);
//!   * `series.pvd` and the manifest's sizes and SHA-256.
//!
//! Needs Python 3 with the pinned readers: `python3 -m pip install -r
//! tests/readers/requirements.txt` (`IONFIELD_PYTHON` picks another interpreter). Without
//! them the test fails and says so; it never passes without checking.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ionfield::config;
use ionfield::cpu::CpuEngine;
use ionfield::engine::{self, Engine};
use ionfield::model::Model;
use ionfield::sim::{self, OutputSchedule};

const INSTALL: &str = "python3 -m pip install -r tests/readers/requirements.txt (Debian's own /usr/bin/python3 refuses this unless PIP_BREAK_SYSTEM_PACKAGES=1 is set, as .ci/run does; or install into a venv and set IONFIELD_PYTHON=venv/bin/python)";

/// A diffusing species A with a box of 2 mM in the low-x, low-y, high-z corner (so every
/// mirror or transposition changes the picture) and a uniform H (pH 7). No reactions.
const SCENARIO: &str = r#"
name = "readers"
description = "round trip of the field writers"
[grid]
shape = [8, 8, 8]
voxel_um = 5.0
[time]
dt_s = 1.0
end_s = 1.0
[species.A]
diffusion_um2_per_s = 20.0
[species.A.initial]
uniform_mm = 0.1
[[species.A.initial.regions]]
shape = "box"
min_um = [0.0, 0.0, 20.0]
max_um = [20.0, 15.0, 40.0]
value_mm = 2.0
[species.H]
diffusion_um2_per_s = 9000.0
initial = { uniform_mm = 1e-4 }
[output]
fields = ["A", "H", "pH"]
slices = [4]
"#;

/// The run: 12×10×8 voxels of 5 µm (60 × 50 × 40 µm), outputs at 0, 1 and 2 s, with the
/// three formats on (tiff is off by default) and the PNG stack off (not read here).
const SETS: &[&str] = &[
    "grid.shape=[12,10,8]",
    "grid.voxel_um=5",
    "time.dt_s=0.5",
    "time.end_s=2",
    "time.output_interval_s=1",
    "output.npy=true",
    "output.vti=true",
    "output.tiff=true",
    "output.png16=false",
];

/// Probe voxels (i, j, k): corners and an inside point of the box.
const PROBES: [[usize; 3]; 5] = [[0, 0, 0], [11, 0, 7], [0, 9, 7], [1, 1, 6], [5, 4, 3]];

#[test]
fn npy_vti_tiff_read_back_by_numpy_vtk_and_tifffile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("readers.toml");
    std::fs::write(&config_path, SCENARIO).expect("write the scenario");
    let run = dir.path().join("run");
    let refs = dir.path().join("ref");
    std::fs::create_dir_all(&refs).expect("ref dir");

    // 1. The binary.
    let mut args: Vec<String> = vec![
        "run".into(),
        config_path.display().to_string(),
        "--backend".into(),
        "cpu".into(),
        "--out".into(),
        run.display().to_string(),
    ];
    for s in SETS {
        args.push("--set".into());
        args.push(s.to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let out = common::ionfield(dir.path(), &argv);
    assert_eq!(out.code, 0, "ionfield run failed:\n{}", out.stderr);
    eprintln!("ionfield run: {:.2} s", started.elapsed().as_secs_f64());

    // 2. The reference: same scenario and schedule on the test's own CPU engine.
    let sets: Vec<String> = SETS.iter().map(|s| s.to_string()).collect();
    let sc = config::load_file(&config_path, &sets).expect("the scenario loads");
    let g = sc.grid;
    assert_eq!((g.nx, g.ny, g.nz, g.voxel_um), (12, 10, 8, 5.0));
    let ix = |name: &str| sc.species.iter().position(|s| s.name == name).unwrap();
    let (a, h) = (ix("A"), ix("H"));
    let model = Model::build(&sc);
    let mut engine = CpuEngine::new(&model);
    let schedule = OutputSchedule::new(&sc.time);
    let mut outputs = Vec::new();
    let mut probes = Vec::new();
    sim::run(
        &mut engine,
        &schedule,
        &model.doses,
        sim::Position::default(),
        &mut sim::on_stop(
            |e: &mut dyn Engine, stop: sim::Stop| -> Result<(), engine::Error> {
                if !stop.output {
                    return Ok(());
                }
                // The documented tag: `t`, 7 integer digits, 1 decimal here, `s`.
                let tag = format!("t{:09.1}s", stop.time_s);
                let fields = e.read_fields(&[a, h])?;
                for (name, f) in [("A", &fields[0]), ("H", &fields[1])] {
                    let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
                    std::fs::write(refs.join(format!("{name}_{tag}.f32")), bytes)
                        .expect("write a reference");
                }
                for [i, j, k] in PROBES {
                    probes.push((stop.time_s, [i, j, k], fields[0][i + g.nx * (j + g.ny * k)]));
                }
                outputs.push(serde_json::json!({ "time_s": stop.time_s, "tag": tag }));
                Ok(())
            },
        ),
    )
    .expect("reference run");
    let tags: Vec<String> = outputs
        .iter()
        .map(|o| o["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tags, ["t0000000.0s", "t0000001.0s", "t0000002.0s"]);
    // The probes must see structure, or they would not catch a swapped axis.
    assert!(probes[3].2 > 1.0 && probes[1].2 < 0.2, "probes: {probes:?}");

    let known_h: Vec<_> = tags
        .iter()
        .map(|t| {
            serde_json::json!({"tag": t, "kind": "const", "value": 1e-4, "tol": 1e-4 * 1e-6,
            "what": "uniform H stays 1e-4 mM"})
        })
        .collect();
    let known_ph: Vec<_> = tags
        .iter()
        .map(|t| {
            serde_json::json!({"tag": t, "kind": "const", "value": 7.0, "tol": 1e-5,
            "what": "pH = 3 - log10(1e-4) = 7"})
        })
        .collect();
    let expect = serde_json::json!({
        "shape": [g.nx, g.ny, g.nz],
        "voxel_um": g.voxel_um,
        "outputs": outputs,
        "probes": PROBES,
        "fields": [
            {"name": "A", "unit": "mM", "array": "A_mM", "known": [
                {"tag": tags[0], "kind": "box", "min_um": [0.0, 0.0, 20.0], "max_um": [20.0, 15.0, 40.0],
                 "inside": 2.0, "outside": 0.1, "what": "t = 0 box: 2 mM inside, 0.1 mM outside"}
            ]},
            {"name": "H", "unit": "mM", "array": "H_mM", "known": known_h},
            {"name": "pH", "unit": "pH", "array": "pH", "known": known_ph},
        ],
    });
    std::fs::write(
        refs.join("expect.json"),
        serde_json::to_string_pretty(&expect).unwrap(),
    )
    .expect("write expect.json");

    // 3. The independent readers.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers/check_outputs.py");
    let python = std::env::var("IONFIELD_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let started = Instant::now();
    let result = Command::new(&python)
        .arg(&script)
        .arg(&run)
        .arg(&refs)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{python}` ({e}). This test needs CPython 3 with pip, then: {INSTALL} (or set IONFIELD_PYTHON to an interpreter that has them)"
            )
        });
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    eprintln!(
        "python readers: {:.2} s\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    if result.status.code() == Some(3) {
        panic!(
            "the Python readers are not installed for `{python}`:\n{stderr}\nInstall them with: {INSTALL}"
        );
    }
    assert!(
        result.status.success(),
        "the independent readers disagree with ionfield's files (exit {:?}):\n{stdout}\n{stderr}",
        result.status.code()
    );
    // 3 times × 3 fields × (npy + tif) + 3 vti + series.pvd; the OME-Zarr store: 9 chunks
    // (3 fields × 3 times), 2 documents, labels/zarr.json and 3 files per label image.
    assert!(
        stdout.contains("readers: all ") && stdout.contains("checks passed on 40 files"),
        "the script did not report its checks:\n{stdout}"
    );
    assert!(
        stdout.contains("fields.ome.zarr: 9 field-times bitwise equal to the npy; NGFF 0.5 valid"),
        "no OME-Zarr comparison:\n{stdout}"
    );
    for tag in &tags {
        for name in ["A", "H"] {
            assert!(
                stdout.contains(&format!(
                    "fields/{name}_{tag}.npy: == engine read-back, bitwise"
                )),
                "no bitwise check of {name} at {tag}:\n{stdout}"
            );
        }
    }
}
