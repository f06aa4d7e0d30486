//! A beam (`species.<name>.initial.beam`, docs/scientific-model.md §12) through the real
//! binary: an ultrasound field entering a 1 mm column through its z_max face, two tissues
//! on its way. Its relative intensity at each voxel centre is exp(−2·Σα·ds) over the path
//! from the face (α in Np/cm per tissue), and it stays as given over the run (a given
//! field: D = 0, no reaction touches it). Bad input is refused with the field and a fix.

mod common;

use common::{ionfield, read_npy_f32, run_cpu};

/// A 3 × 3 × 50 column of 20 µm (z 1 mm): tissue `deep` below z = 400 µm, `normal` above;
/// `beam` is the US species' beam table.
fn column(beam: &str, extra: &str) -> String {
    format!(
        r#"name = "ultrasound_column"
[grid]
shape = [3, 3, 50]
voxel_um = 20.0
[time]
dt_s = 10.0
end_s = 60.0
output_interval_s = 60.0
[tissues.deep]
shape = "box"
min_um = [0.0, 0.0, 0.0]
max_um = [60.0, 60.0, 400.0]
[species.US]
unit = "1"
diffusion_um2_per_s = 0.0
initial = {{ beam = {beam} }}
{extra}
[output]
fields = ["US"]
slice_axis = "z"
png16 = false
vti = false
"#
    )
}

const BEAM: &str = r#"{ face = "z_max", attenuation_np_per_cm = { normal = 1.0, deep = 3.0 } }"#;

#[test]
fn a_beam_through_two_tissues_decays_by_its_path_and_stays_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("column.toml");
    std::fs::write(&path, column(BEAM, "")).unwrap();
    let out = run_cpu(dir.path(), &path, "out");
    let field = |t: &str| read_npy_f32(&out.join(format!("fields/US_t{t}s.npy")));
    let (start, end) = (field("0000000.0"), field("0000060.0"));
    // Intensity attenuation 2α: 2e-4 /µm above z = 400 µm, 6e-4 /µm below.
    let (mu_n, mu_d, dx) = (2e-4f64, 6e-4f64, 20.0f64);
    let mut worst = 0.0f64;
    for k in 0..50 {
        let z = (k as f64 + 0.5) * dx;
        let depth = 1000.0 - z;
        let optical = if z > 400.0 {
            mu_n * depth
        } else {
            mu_n * 600.0 + mu_d * (400.0 - z)
        };
        let want = (-optical).exp();
        for v in 0..9 {
            worst = worst.max((start[k * 9 + v] as f64 / want - 1.0).abs());
        }
    }
    println!(
        "ultrasound column: relative intensity within {worst:.2e} of exp(−2Σα·ds); {:.6} at the bottom",
        start[0]
    );
    assert!(worst < 1e-6, "beam off by {worst}");
    assert_eq!(start, end, "the given field changed over the run");
}

#[test]
fn beams_refuse_bad_keys_with_the_field_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let with_uniform = format!("{BEAM}, uniform_mm = 1.0");
    let cases: [(&str, &str, &str, &[&str]); 6] = [
        (
            &BEAM.replace("z_max", "top"),
            "",
            "face.toml",
            &["species.US.initial.beam.face", "z_max"],
        ),
        (
            &BEAM.replace("deep = 3.0", "deep = -3.0"),
            "",
            "attenuation.toml",
            &["species.US.initial.beam.attenuation_np_per_cm", "Np/cm"],
        ),
        (
            &BEAM.replace("3.0 } }", "3.0 }, focus_depth_um = 500.0 }"),
            "",
            "focus.toml",
            &["species.US.initial.beam.waist_um", "focused beam"],
        ),
        (
            BEAM,
            "",
            "diffusing.toml",
            &["species.US.diffusion_um2_per_s", "does not diffuse"],
        ),
        (
            &BEAM.replace("{ face", "{ face = \"z_max\", fce"),
            "",
            "typo.toml",
            &["species.US.initial.beam", "fce"],
        ),
        (
            &with_uniform,
            "",
            "uniform.toml",
            &[
                "species.US.initial.beam",
                "cannot be combined with uniform_mm",
            ],
        ),
    ];
    for (beam, extra, name, want) in cases {
        let mut text = column(beam, extra);
        if name == "diffusing.toml" {
            text = text.replace(
                "diffusion_um2_per_s = 0.0\ninitial = { beam",
                "diffusion_um2_per_s = 5.0\ninitial = { beam",
            );
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = ionfield(dir.path(), &["check", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        for w in want {
            assert!(out.stderr.contains(w), "{name}: no {w:?} in {}", out.stderr);
        }
        assert!(
            out.stderr.contains("Fix:") || out.stderr.contains("fix"),
            "{name}: {}",
            out.stderr
        );
    }
}
