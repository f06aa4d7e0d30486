//! Synthetic fluorescence (`[fluorescence]`, docs/scientific-model.md §6) through the real
//! binary: a uniform dye in a 1 mm slab imaged through its z_max face. Each voxel's
//! emission reaching the face is b·C·E·exp(−µ·d) (d its centre's depth), and the image is
//! its sum through the depth × dx, against the closed forms b·C·E·dx·Σ_k e^(−µ(k+½)dx)
//! (exact for the voxels) and b·C·E·(1 − e^(−µL))/µ (the continuous slab, within the
//! midpoint rule's (µ·dx)²/24). Bad input is refused with the field and a fix.

mod common;

use common::{ionfield, read_npy_f32};

/// A 4 × 3 × 50 grid of 20 µm (z 1 mm), dye 2 mM, excitation species E at 0.5, no
/// reactions; `extra` appended.
fn slab(extra: &str) -> String {
    format!(
        r#"name = "fluorescence_slab"
[grid]
shape = [4, 3, 50]
voxel_um = 20.0
[time]
dt_s = 1.0
end_s = 1.0
output_interval_s = 1.0
[species.dye]
diffusion_um2_per_s = 0.0
initial = {{ uniform_mm = 2.0 }}
[species.E]
diffusion_um2_per_s = 0.0
initial = {{ uniform_mm = 0.5 }}
[output]
fields = ["dye", "FL", "FLimg"]
slice_axis = "z"
png16 = false
vti = false
{extra}
"#
    )
}

const FLUORESCENCE: &str = r#"[fluorescence]
brightness_per_mM = { dye = 3.0 }
excitation = "E"
emission_mu_eff_per_cm = 10.0
face = "z_max"
"#;

#[test]
fn a_uniform_slab_images_as_its_closed_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slab.toml");
    std::fs::write(&path, slab(FLUORESCENCE)).unwrap();
    let run = ionfield(
        dir.path(),
        &[
            "run",
            path.to_str().unwrap(),
            "--backend",
            "cpu",
            "--out",
            "out",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let field = |name: &str| {
        read_npy_f32(
            &dir.path()
                .join(format!("out/fields/{name}_t0000000.0s.npy")),
        )
    };
    let (fl, img) = (field("FL"), field("FLimg"));
    let (b, c, e, mu, dx, n) = (3.0f64, 2.0f64, 0.5f64, 10.0e-4f64, 20.0f64, 50usize);
    let mut worst_fl = 0.0f64;
    for k in 0..n {
        // depth from the z_max face of layer k
        let d = (n - 1 - k) as f64 * dx + dx / 2.0;
        let want = b * c * e * (-mu * d).exp();
        for v in 0..12 {
            let got = fl[k * 12 + v] as f64;
            worst_fl = worst_fl.max((got / want - 1.0).abs());
        }
    }
    let voxels: f64 = (0..n)
        .map(|k| (-mu * (k as f64 + 0.5) * dx).exp())
        .sum::<f64>();
    let want_img = b * c * e * dx * voxels;
    let slab = b * c * e * (1.0 - (-mu * n as f64 * dx).exp()) / mu;
    let worst_img = img
        .iter()
        .map(|&g| (g as f64 / want_img - 1.0).abs())
        .fold(0.0, f64::max);
    println!(
        "fluorescence slab: FL within {worst_fl:.2e} of b·C·E·exp(−µd); image {:.5} a.u. (voxel sum {want_img:.5}, continuous slab {slab:.5}, relative difference {:.2e})",
        img[0],
        want_img / slab - 1.0
    );
    assert!(worst_fl < 1e-6, "FL off by {worst_fl}");
    assert!(worst_img < 1e-6, "image off by {worst_img}");
    assert!((img[0] as f64 / slab - 1.0).abs() < (mu * dx).powi(2) / 24.0 * 1.01);
}

#[test]
fn fluorescence_fields_need_their_table_and_valid_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "",
            "no_table.toml",
            &["output.fields[1]", "needs a [fluorescence] table"],
        ),
        (
            &FLUORESCENCE.replace("dye = 3.0", "dey = 3.0"),
            "typo.toml",
            &[
                "fluorescence.brightness_per_mM.dey",
                "unknown species `dey`",
            ],
        ),
        (
            &FLUORESCENCE.replace("\"z_max\"", "\"top\""),
            "face.toml",
            &["fluorescence.face", "z_max"],
        ),
        (
            &FLUORESCENCE.replace("= 10.0", "= -1.0"),
            "mu.toml",
            &["fluorescence.emission_mu_eff_per_cm", "-1"],
        ),
    ];
    for (extra, name, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, slab(extra)).unwrap();
        let out = ionfield(dir.path(), &["check", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        for w in want {
            assert!(out.stderr.contains(w), "{name}: no {w:?} in {}", out.stderr);
        }
        assert!(out.stderr.contains("Fix:"), "{name}: {}", out.stderr);
    }
}
