//! RunWriter tests: layout, manifest checksums, error messages, and one real example.

use std::fs;
use std::path::Path;

use super::*;
use crate::config::Axis;
use crate::config::{
    BoundaryCondition, Colormap, Grid, InitialCondition, OutputSpec, Species, TimeSpec, Tissue,
};

fn species(name: &str) -> Species {
    Species {
        name: name.to_string(),
        unit: "mM".to_string(),
        display_unit: "mM".to_string(),
        diffusion_um2_per_s: 2000.0,
        decay_per_s_by_tissue: vec![0.0],
        initial: InitialCondition {
            uniform_mm: 0.0,
            tissue_mm: vec![],
            regions: vec![],
            beam: None,
        },
        boundary: [BoundaryCondition::ZeroFlux; 6],
        quasi_steady: false,
        atol_mm: None,
    }
}

/// A scenario built directly (no config loader): 64×64×16 grid of 10 µm voxels.
fn scenario(output: OutputSpec) -> Scenario {
    Scenario {
        name: "blob".to_string(),
        description: "test".to_string(),
        source: "<test>".to_string(),
        grid: Grid {
            nx: 64,
            ny: 64,
            nz: 16,
            voxel_um: 10.0,
        },
        time: TimeSpec {
            dt_s: 1.0,
            end_s: 600.0,
            output_interval_s: 120.0,
            theta: 1.0,
            max_diffusion_r: None,
            scheme: Default::default(),
        },
        tissues: vec![Tissue {
            name: "normal".to_string(),
            region: None,
            mask: None,
        }],
        species: vec![species("o2"), species("h_plus")],
        vessels: vec![],
        vessel_network: None,
        parameters: vec![],
        reactions: vec![],
        buffer: None,
        chemistry: Default::default(),
        network: None,
        doses: vec![],
        spin_up: None,
        mri: None,
        fluorescence: None,
        output,
    }
}

fn output_spec(slices: SliceSelection) -> OutputSpec {
    OutputSpec {
        fields: vec![0, 1],
        colormap: Colormap::Viridis,
        colour_scale: crate::config::ColourScale::Auto,
        outlines: crate::config::Outlines::default(),
        theme: None,
        slice_axis: Axis::Z,
        slices,
        ranges: vec![ValueRange::Auto, ValueRange::Fixed { lo: 0.0, hi: 2.0 }],
        png16: crate::config::Png16::All,
        npy: true,
        zarr: false,
        vti: true,
        tiff: true,
        ph: None,
        mri: vec![],
        fluorescence: vec![],
        masks: vec![],
        timeseries: vec![],
        summary_interval_s: None,
        exact_summaries: false,
        probes: vec![],
        figure: None,
    }
}

/// Gaussian blob (peak `peak_mm`, σ = 8 voxels) centred off-centre at (40, 24, 8) voxels,
/// so a mirrored picture would be noticed: the blob must appear right of centre and
/// *below* the middle (low y is at the bottom).
fn blob(grid: &Grid, peak_mm: f32) -> Vec<f32> {
    let mut f = vec![0.0; grid.n_voxels()];
    for k in 0..grid.nz {
        for j in 0..grid.ny {
            for i in 0..grid.nx {
                let (dx, dy, dz) = (i as f32 - 40.0, j as f32 - 24.0, k as f32 - 8.0);
                let r2 = dx * dx + dy * dy + dz * dz;
                f[i + grid.nx * (j + grid.ny * k)] = 0.02 + peak_mm * (-r2 / (2.0 * 64.0)).exp();
            }
        }
    }
    f
}

fn read_manifest(dir: &Path) -> serde_json::Value {
    let text = fs::read_to_string(dir.join("manifest.json")).expect("manifest exists");
    serde_json::from_str(&text).expect("manifest is JSON")
}

#[test]
fn run_writer_writes_layout_and_manifest() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out_dir = tmp.path().join("out/blob");
    let sc = scenario(output_spec(SliceSelection::Indices(vec![8])));
    let info = RunInfo {
        backend: "cpu".into(),
        adapter: "test".into(),
        driver: "none".into(),
    };
    let mut w = RunWriter::create(&out_dir, &sc, info).expect("create");
    let f0 = blob(&sc.grid, 1.5);
    let f1 = blob(&sc.grid, 0.5);
    w.write_output(0.0, 0, &[f0.clone(), f1.clone()])
        .expect("t=0");
    w.write_output(120.0, 120, &[f0.clone(), f1])
        .expect("t=120");
    // Per time: 2 fields × (1 png8 + 16 png16 + 1 npy + 1 tif) + 1 vti; plus one
    // series.pvd, rewritten (and listed once) at every time.
    assert_eq!(w.files_written(), 2 * (2 * 19 + 1) + 1);
    assert!(out_dir.join("tiff/h_plus_t0000120.0s.tif").is_file());
    assert!(out_dir.join("vti/fields_t0000000.0s.vti").is_file());
    let pvd = fs::read_to_string(out_dir.join("vti/series.pvd")).expect("series.pvd");
    assert_eq!(pvd.matches("<DataSet ").count(), 2, "{pvd}");
    assert!(pvd.contains("timestep=\"120\" group=\"\" part=\"0\" file=\"fields_t0000120.0s.vti\""));
    let png8 = out_dir.join("png/o2/z008_t0000120.0s.png");
    assert!(png8.is_file(), "missing {}", png8.display());
    assert!(out_dir.join("png16/o2/t0000120.0s/z015.png").is_file());
    assert!(out_dir.join("fields/h_plus_t0000000.0s.npy").is_file());

    let m = read_manifest(&out_dir);
    assert_eq!(m["status"], "running");
    assert_eq!(m["backend"], "cpu");
    assert_eq!(m["ionfield_version"], crate::VERSION);
    assert_eq!(
        m["axis_order"],
        "fields stored x fastest; npy shape (nz, ny, nx)"
    );
    assert_eq!(m["scenario"]["grid"]["nx"], 64);
    assert_eq!(m["outputs"].as_array().expect("outputs").len(), 2);
    let files = m["files"].as_array().expect("files");
    assert_eq!(files.len(), w.files_written());
    for f in files {
        let sha = f["sha256"].as_str().expect("sha256");
        assert_eq!(sha.len(), 64);
        assert!(sha
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let path = out_dir.join(f["path"].as_str().expect("path"));
        assert!(path.is_file(), "listed but missing: {}", path.display());
        assert_eq!(fs::metadata(&path).expect("meta").len(), f["bytes"]);
    }
    // Recompute one checksum from disk.
    let npy_entry = files
        .iter()
        .find(|f| f["kind"] == "npy" && f["field"] == "o2" && f["time_s"] == 120.0)
        .expect("npy entry");
    let bytes = fs::read(out_dir.join(npy_entry["path"].as_str().expect("path"))).expect("read");
    assert_eq!(npy_entry["sha256"], manifest::sha256_hex(&bytes));
    // The .npy, the TIFF pages and the first .vti array hold the same f32 bytes.
    let data = &bytes[bytes.len() - 4 * sc.grid.n_voxels()..];
    let tif = fs::read(out_dir.join("tiff/o2_t0000120.0s.tif")).expect("tif");
    assert!(
        tif.windows(data.len()).any(|w| w == data),
        "tif pages differ from the npy"
    );
    let vti = fs::read(out_dir.join("vti/fields_t0000120.0s.vti")).expect("vti");
    let head = b"<AppendedData encoding=\"raw\">\n   _";
    let at = vti
        .windows(head.len())
        .position(|w| w == head)
        .expect("appended")
        + head.len();
    assert_eq!(
        &vti[at + 8..at + 8 + data.len()],
        data,
        "vti differs from the npy"
    );
    // The 16-bit stack is in the same array order: pixel (col, row) of slice z = k is
    // voxel (i = col, j = row, k), to the 1/65535 of the recorded range (not mirrored in y
    // against the .npy and the TIFF).
    let o2_16 = files
        .iter()
        .find(|f| f["kind"] == "png16" && f["field"] == "o2" && f["time_s"] == 120.0)
        .expect("png16 entry");
    let (lo, hi) = (
        o2_16["lo"].as_f64().expect("lo"),
        o2_16["hi"].as_f64().expect("hi"),
    );
    let k = 8;
    let img = image::open(out_dir.join(format!("png16/o2/t0000120.0s/z{k:03}.png")))
        .expect("png16 decodes")
        .into_luma16();
    let g = &sc.grid;
    assert_eq!(img.dimensions(), (g.nx as u32, g.ny as u32));
    for j in 0..g.ny {
        for i in 0..g.nx {
            let v = lo + f64::from(img.get_pixel(i as u32, j as u32).0[0]) / 65535.0 * (hi - lo);
            let want = f64::from(f0[i + g.nx * (j + g.ny * k)]);
            assert!(
                (v - want).abs() <= (hi - lo) / 65535.0,
                "png16 pixel ({i}, {j}) = {v}, npy voxel ({i}, {j}, {k}) = {want}"
            );
        }
    }
    let vti_entry = files
        .iter()
        .find(|f| f["kind"] == "vti")
        .expect("vti entry");
    assert_eq!(
        (vti_entry["field"].as_str(), vti_entry["unit"].as_str()),
        (Some("o2,h_plus"), Some("mM,mM"))
    );
    assert!(vti_entry["mapping"]
        .as_str()
        .expect("mapping")
        .contains("o2_mM = o2 in mM"));
    let tif_entry = files
        .iter()
        .find(|f| f["kind"] == "tiff" && f["field"] == "h_plus")
        .expect("tiff entry");
    assert_eq!(
        (tif_entry["lo"].as_f64(), tif_entry["hi"].as_f64()),
        (Some(0.0), Some(2.0))
    );
    // The fixed range is recorded for h_plus; o2 is auto (min/max of the field).
    let h16 = files
        .iter()
        .find(|f| f["kind"] == "png16" && f["field"] == "h_plus")
        .expect("png16 entry");
    assert_eq!(
        (h16["lo"].as_f64(), h16["hi"].as_f64()),
        (Some(0.0), Some(2.0))
    );
    assert!(h16["mapping"]
        .as_str()
        .expect("mapping")
        .starts_with("value = lo + p/65535"));
    let stacks = m["png16_stacks"].as_array().expect("stacks");
    assert_eq!(stacks.len(), 4);
    let hi_auto = f0.iter().cloned().fold(f32::MIN, f32::max) as f64;
    assert!((stacks[0]["hi"].as_f64().expect("hi") - hi_auto).abs() < 1e-9);

    let manifest_path = w.write_manifest("complete", 1.25).expect("final manifest");
    assert_eq!(read_manifest(&out_dir)["status"], "complete");
    assert_eq!(manifest_path, out_dir.join("manifest.json"));
    // Nothing temporary is left anywhere.
    let mut stack = vec![out_dir.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("list") {
            let p = e.expect("entry").path();
            assert!(
                !p.to_string_lossy().contains(".tmp-"),
                "left over {}",
                p.display()
            );
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
}

#[test]
fn run_writer_create_unwritable_names_path() {
    let sc = scenario(output_spec(SliceSelection::Indices(vec![0])));
    let bad = Path::new("/etc/passwd/x");
    let err = RunWriter::create(bad, &sc, RunInfo::default())
        .err()
        .expect("a folder under a regular file cannot be created");
    let msg = err.to_string();
    assert!(msg.contains("/etc/passwd/x"), "{msg}");
    assert!(msg.contains("--out"), "{msg}");
}

#[test]
fn run_writer_rejects_wrong_field_length() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let sc = scenario(output_spec(SliceSelection::Indices(vec![0])));
    let mut w = RunWriter::create(tmp.path(), &sc, RunInfo::default()).expect("create");
    let err = w
        .write_output(0.0, 0, &[vec![0.0; 10], vec![0.0; 10]])
        .unwrap_err();
    assert!(err.to_string().contains("o2 has 10 values"), "{err}");
}

#[test]
fn time_tags_sort_and_resolve_sub_second_outputs() {
    assert_eq!(time_tag(120.0, 1), "t0000120.0s");
    assert_eq!(time_tag(999_999.5, 1), "t0999999.5s");
    assert!(time_tag(9.5, 1) < time_tag(10.0, 1));
    assert_eq!(time_decimals(120.0, 600.0), 1);
    assert_eq!(time_decimals(0.25, 10.0), 2);
    assert_eq!(time_tag(0.25, 2), "t0000000.25s");
}

#[test]
fn constant_field_range_never_divides_by_zero() {
    let (lo, hi) = resolve_range(ValueRange::Auto, &[3.0; 8]);
    assert_eq!(lo, 3.0);
    assert!(hi > lo);
    assert_eq!(resolve_range(ValueRange::Auto, &[f32::NAN; 4]), (0.0, 1.0));
}

/// The real example: a Gaussian blob on 64×64×16, every z slice as a colour stack. One
/// picture is copied to `/tmp/output_example.png` for a human look.
#[test]
fn example_blob_renders_colour_stack() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut out = output_spec(SliceSelection::All);
    out.fields = vec![0];
    out.ranges = vec![ValueRange::Auto];
    out.png16 = crate::config::Png16::None;
    out.npy = false;
    out.vti = false;
    out.tiff = false;
    let sc = scenario(out);
    let mut w = RunWriter::create(tmp.path(), &sc, RunInfo::default()).expect("create");
    w.write_output(120.0, 120, &[blob(&sc.grid, 1.5)])
        .expect("write");
    assert_eq!(w.files_written(), 16);
    let src = tmp.path().join("png/o2/z008_t0000120.0s.png");
    let img = image::open(&src).expect("decode").into_rgb8();
    assert!(img.width().max(img.height()) >= 400);
    // Best effort: the copy is for eyes only, so a read-only /tmp does not fail the test.
    let _ = fs::copy(&src, "/tmp/output_example.png");
}

#[test]
fn cell_bound_fields_are_viab_and_the_species_nothing_holds_that_do_not_diffuse() {
    // The built-in default: GSH, the iron pool, OH·, Ox and the particle are cell-bound;
    // O2 and H2O2 (held in vessels), H (diffuses) and glucose (held) are not.
    let sc = crate::config::load_str(
        crate::config::DEFAULT_SCENARIO_TOML,
        crate::config::DEFAULT_SOURCE,
        &[],
    )
    .unwrap();
    let cells = super::figure_out::cell_bound_fields(&sc);
    for name in ["viab", "GSH", "Fe2", "Fe3", "OH", "Ox", "NP_Fe"] {
        assert!(cells.iter().any(|c| c == name), "{name} not in {cells:?}");
    }
    for name in ["O2", "H2O2", "H", "glucose", "CO2", "Lac"] {
        assert!(!cells.iter().any(|c| c == name), "{name} in {cells:?}");
    }
}

#[test]
fn mapping_text_names_the_special_values_the_slices_draw() {
    let bar = ColourBar {
        lo: 0.0,
        hi: 3600.0,
        log: false,
        below: false,
        above: false,
    };
    let cmap = crate::config::Colormap::Viridis;
    let death = mapping8(TIME_OF_DEATH, &bar, cmap, "note");
    assert!(
        death.contains("NaN = [160, 160, 160]: alive at the end (never died); 0 = [0, 0, 0]: dead already at t = 0; note"),
        "{death}"
    );
    let oh = mapping8("OH", &bar, cmap, "note");
    assert!(oh.ends_with("; NaN = magenta; note"), "{oh}");
    let (nan, marked) = special_values(TIME_OF_DEATH);
    assert_eq!(nan, Some((ALIVE_LABEL, png::ALIVE_RGB)));
    assert_eq!(
        marked,
        Some((0.0, DEAD_AT_START_LABEL, png::DEAD_AT_START_RGB))
    );
    assert_eq!(special_values("viab"), (None, None));
}
