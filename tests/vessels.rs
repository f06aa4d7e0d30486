//! `[vessel_network]` (generated and file networks, Robin exchange) and tissue masks.
//! Each test prints what it measured.

mod common;

use std::path::Path;

use ionfield::config::{self, Region, Scenario};
use ionfield::model::{Model, TISSUE_ID_MASK};

fn network_toml(shape: [usize; 3], net: &str) -> String {
    format!(
        r#"
name = "vessels"
[grid]
shape = [{}, {}, {}]
voxel_um = 10.0
[time]
dt_s = 1.0
end_s = 1.0
[species.O2]
diffusion_um2_per_s = 2000.0
[species.glucose]
diffusion_um2_per_s = 0.0
initial = {{ uniform_mm = 1.0 }}
[vessel_network]
{net}
"#,
        shape[0], shape[1], shape[2]
    )
}

fn load_in(dir: &Path, text: &str) -> Result<Scenario, config::Error> {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    config::load_file(&path, &[])
}

fn segments(s: &Scenario) -> Vec<[u64; 7]> {
    s.vessels
        .iter()
        .filter(|v| v.from_network)
        .map(|v| match v.region {
            Region::Capsule {
                start_um,
                end_um,
                radius_um,
            } => [
                start_um.x.to_bits(),
                start_um.y.to_bits(),
                start_um.z.to_bits(),
                end_um.x.to_bits(),
                end_um.y.to_bits(),
                end_um.z.to_bits(),
                radius_um.to_bits(),
            ],
            other => panic!("network segment is not a capsule: {other:?}"),
        })
        .collect()
}

/// Length density measured from the segment list (every endpoint must lie in the box),
/// in mm/mm³.
fn measured_density_mm_per_mm3(s: &Scenario) -> f64 {
    let ext = s.grid.extent_um();
    let mut total = 0.0;
    for v in s.vessels.iter().filter(|v| v.from_network) {
        let Region::Capsule {
            start_um, end_um, ..
        } = v.region
        else {
            unreachable!()
        };
        for p in [start_um, end_um] {
            assert!(
                p.cmpge(glam::DVec3::ZERO).all() && p.cmple(ext).all(),
                "endpoint {p} outside the box"
            );
        }
        total += start_um.distance(end_um);
    }
    total / (ext.x * ext.y * ext.z) * 1e6
}

const DOMAIN: [usize; 3] = [64, 64, 64]; // 640 µm cube

#[test]
fn generated_networks_are_reproducible_and_hit_the_density() {
    let cases = [
        ("straight spacing", "kind = \"straight\"\nspacing_um = 120.0\nradius_um = 5.0\naxis = \"z\"\nhold_mm = { O2 = 0.054 }", 1e6 / (120.0f64 * 120.0)),
        ("straight density", "kind = \"straight\"\ndensity_mm_per_mm3 = 100.0\nradius_um = 5.0\naxis = \"x\"\nhold_mm = { O2 = 0.054 }", 100.0),
        ("branching spacing", "kind = \"branching\"\nspacing_um = 120.0\nradius_um = 5.0\nhold_mm = { O2 = 0.054 }", 1e6 / (120.0f64 * 120.0)),
        ("branching density", "kind = \"branching\"\ndensity_mm_per_mm3 = 150.0\nradius_um = 4.0\naxis = \"y\"\nsegment_um = 15.0\npersistence = 0.7\nbranch_probability = 0.1\nhold_mm = { O2 = 0.054 }", 150.0),
    ];
    for (label, net, want) in cases {
        let t0 = std::time::Instant::now();
        let a = common::scenario(&network_toml(DOMAIN, &format!("seed = 7\n{net}")));
        let gen_s = t0.elapsed().as_secs_f64();
        let b = common::scenario(&network_toml(DOMAIN, &format!("seed = 7\n{net}")));
        let c = common::scenario(&network_toml(DOMAIN, &format!("seed = 8\n{net}")));
        let (sa, sb, sc) = (segments(&a), segments(&b), segments(&c));
        assert_eq!(sa, sb, "{label}: same seed, different segments");
        assert_ne!(sa, sc, "{label}: seeds 7 and 8 gave the same network");
        let t1 = std::time::Instant::now();
        let (ma, mb) = (Model::build(&a), Model::build(&b));
        let raster_s = t1.elapsed().as_secs_f64() / 2.0;
        assert_eq!(
            ma.mask, mb.mask,
            "{label}: same seed, different voxel masks"
        );
        let n_vessel_voxels = ma
            .mask
            .iter()
            .filter(|&&m| m & !TISSUE_ID_MASK != 0)
            .count();
        let got = measured_density_mm_per_mm3(&a);
        let rel = (got - want).abs() / want;
        let summary = a.vessel_network.as_ref().unwrap();
        println!(
            "{label}: {} segments, {n_vessel_voxels} vessel voxels, density {got:.2} mm/mm³ (requested {want:.2}, error {:.2} %), \
             recorded {:.2}; generation {gen_s:.3} s, rasterisation {raster_s:.3} s",
            sa.len(),
            100.0 * rel,
            summary.length_density_mm_per_mm3
        );
        assert!(rel < 0.05, "{label}: density error {:.2} %", 100.0 * rel);
        assert!((summary.length_density_mm_per_mm3 - got).abs() < 1e-9 * got);
        assert_eq!(summary.n_segments, sa.len());
        assert!(n_vessel_voxels > 0);
    }
}

#[test]
fn straight_capillaries_are_spread_out() {
    // Poisson-disc-like placement: no two lines closer than half the spacing here.
    let s = common::scenario(&network_toml(
        DOMAIN,
        "seed = 3\nkind = \"straight\"\nspacing_um = 120.0\nradius_um = 5.0\nhold_mm = { O2 = 0.054 }",
    ));
    let pts: Vec<(f64, f64)> = s
        .vessels
        .iter()
        .map(|v| match v.region {
            Region::Capsule { start_um, .. } => (start_um.x, start_um.y),
            _ => unreachable!(),
        })
        .collect();
    let mut min_d = f64::MAX;
    for (i, p) in pts.iter().enumerate() {
        for q in &pts[i + 1..] {
            min_d = min_d.min(((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt());
        }
    }
    println!("straight: {} lines, nearest pair {min_d:.1} µm", pts.len());
    assert!(min_d > 60.0, "{min_d}");
}

/// `tissue_spacing_um`: a tissue at spacing s_t keeps (s/s_t)² of the network's lines
/// (counted as vessel voxels in a layer of each tissue); the other tissue keeps all of them,
/// and the segment geometry is the seed's, unchanged by the thinning.
#[test]
fn tissue_spacing_thins_the_network_in_that_tissue_only() {
    // 600 × 600 µm in x–y; the tumour is the upper half in z.
    let base = "seed = 5\nkind = \"straight\"\naxis = \"z\"\nspacing_um = 40.0\nradius_um = 4.0\nhold_mm = { O2 = 0.054 }";
    let with_tumour = |net: &str| {
        network_toml([60, 60, 20], net).replace(
            "[vessel_network]",
            "[tissues.tumour]\nshape = \"box\"\nmin_um = [0.0, 0.0, 100.0]\nmax_um = [600.0, 600.0, 200.0]\n[vessel_network]",
        )
    };
    let plain = common::scenario(&with_tumour(base));
    let thinned = common::scenario(&with_tumour(&format!(
        "{base}\ntissue_spacing_um = {{ tumour = 120.0 }}"
    )));
    assert_eq!(
        segments(&plain),
        segments(&thinned),
        "the geometry of the seed"
    );
    let net = thinned.vessel_network.as_ref().unwrap();
    assert_eq!(net.keep_fraction_by_tissue, [1.0, 1.0 / 9.0]);
    // Vessel voxels of one z layer inside each tissue (held O2 marks them).
    let layer = |s: &Scenario, k: usize| {
        let m = Model::build(s);
        let nxy = 60 * 60;
        (0..nxy)
            .filter(|&i| m.mask[k * nxy + i] & !TISSUE_ID_MASK != 0)
            .count() as f64
    };
    let (normal_all, tumour_all) = (layer(&plain, 5), layer(&plain, 15));
    let (normal_thin, tumour_thin) = (layer(&thinned, 5), layer(&thinned, 15));
    // Per-tissue blood values: each vessel voxel holds its own tissue's.
    let per_tissue = common::scenario(&with_tumour(&base.replace(
        "hold_mm = { O2 = 0.054 }",
        "hold_mm = { O2 = { normal = 0.054, tumour = 0.03 } }",
    )));
    let m = Model::build(&per_tissue);
    let held: std::collections::BTreeSet<(u32, u64)> = (0..m.mask.len())
        .filter(|&ix| m.mask[ix] & !TISSUE_ID_MASK != 0)
        .map(|ix| (m.mask[ix] & TISSUE_ID_MASK, m.initial_mm[0][ix].to_bits()))
        .collect();
    assert_eq!(
        held,
        [(0, 0.054f64.to_bits()), (1, 0.03f64.to_bits())].into(),
        "held O2 by tissue id"
    );
    let lines = segments(&plain).len() as f64;
    let kept = thinned
        .vessels
        .iter()
        .filter(|v| v.keep_draw < 1.0 / 9.0)
        .count() as f64;
    println!(
        "{lines} lines; vessel voxels per layer: normal {normal_all} -> {normal_thin}, tumour {tumour_all} -> {tumour_thin} ({kept} lines kept, expected {:.1})",
        lines / 9.0
    );
    assert_eq!(normal_thin, normal_all, "normal tissue keeps every line");
    assert_eq!(
        tumour_all, normal_all,
        "same lines in both layers before thinning"
    );
    // Each kept line keeps its voxels in the tumour layer.
    assert!(
        tumour_thin > 0.0 && (tumour_thin / tumour_all - kept / lines).abs() < 0.05,
        "{tumour_thin} / {tumour_all} against {kept} / {lines}"
    );
    // The draws are uniform: the kept count is binomial(lines, 1/9), within 3 sd.
    let sd = (lines / 9.0 * (8.0 / 9.0)).sqrt();
    assert!(
        (kept - lines / 9.0).abs() < 3.0 * sd,
        "{kept} kept of {lines}"
    );
}

/// Robin exchange with D = 0: each voxel next to the vessel obeys
/// dC/dt = P·(S/V)·(C_b − C) with S/V = (vessel faces)/h × 2πr/4h (the capillary's
/// perimeter over its one-voxel staircase's), so C_b − C decays as exp(−k t),
/// k = P·2πr/(4h²) = 0.0157 /s for P = 0.5 µm/s, r = 2 µm, h = 10 µm; voxels touching no
/// vessel face keep C0.
#[test]
fn robin_exchange_relaxes_at_p_times_s_over_v() {
    let dir = tempfile::tempdir().unwrap();
    // One polyline through the centre column of a 3×3×3 grid.
    std::fs::write(
        dir.path().join("vessels.csv"),
        "polyline,x_um,y_um,z_um,radius_um\n0,15,15,0,2\n0,15,15,30,2\n",
    )
    .unwrap();
    let text = network_toml(
        [3, 3, 3],
        "file = \"vessels.csv\"\nexchange = { glucose = { permeability_um_per_s = 0.5, blood_mm = 5.0 } }",
    );
    let s = load_in(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    let net = s.vessel_network.as_ref().unwrap();
    assert_eq!(net.n_segments, 1);
    let sv = net.surface_species.unwrap();
    assert!(s
        .reactions
        .iter()
        .any(|r| r.name == "vessel_exchange_glucose"
            && r.rate == "P_glucose * vessel_SV * (Cb_glucose - glucose)"));
    let model = Model::build(&s);
    let ix = |i: usize, j: usize, k: usize| i + 3 * (j + 3 * k);
    assert_eq!(model.initial_mm[sv][ix(1, 1, 1)], 0.0); // vessel voxel
    let one_face = 0.1 * 2.0 * std::f64::consts::PI * 2.0 / 40.0; // 1/h × 2πr/4h
    assert!((model.initial_mm[sv][ix(0, 1, 1)] - one_face).abs() < 1e-15);
    assert_eq!(model.initial_mm[sv][ix(0, 0, 1)], 0.0); // corner: edge contact only
    let mut e = common::engine(common::Backend::Cpu, &model).unwrap();
    let (dt, steps) = (0.1, 200u64);
    e.advance(steps, dt).unwrap();
    let g = &e.read_fields(&[1]).unwrap()[0];
    let t = dt * steps as f64;
    let k_measured = ((5.0 - 1.0) / (5.0 - g[ix(0, 1, 1)] as f64)).ln() / t;
    let k_want = 0.5 * one_face;
    let rel = (k_measured - k_want).abs() / k_want;
    println!(
        "robin: C(t = {t} s) = {:.6} mM next to the vessel, k measured {k_measured:.6} /s vs P·S/V = {k_want} /s (rel {rel:.2e}); corner {:.6}, vessel voxel {:.6}",
        g[ix(0, 1, 1)], g[ix(0, 0, 1)], g[ix(1, 1, 1)]
    );
    // f32 readback (1e-7) and the Rosenbrock step at rtol 1e-3 over 200 steps.
    assert!(rel < 2e-3, "k rel error {rel:.2e}");
    assert!((g[ix(0, 0, 1)] - 1.0).abs() < 1e-6);
    assert!(
        (g[ix(1, 1, 1)] - 1.0).abs() < 1e-6,
        "vessel voxel has S/V = 0: no source"
    );
}

#[test]
fn network_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("kind = \"straight\"\nradius_um = 5.0\nspacing_um = 100.0\nhold_mm = { O2 = 0.05 }", "vessel_network.seed"),
        ("seed = 1\nkind = \"straight\"\nradius_um = 5.0\nhold_mm = { O2 = 0.05 }", "vessel_network.spacing_um"),
        ("seed = 1\nkind = \"straight\"\nradius_um = 5.0\nspacing_um = 100.0\ndensity_mm_per_mm3 = 5.0\nhold_mm = { O2 = 0.05 }", "vessel_network.density_mm_per_mm3"),
        ("seed = 1\nkind = \"curly\"\nradius_um = 5.0\nspacing_um = 100.0\nhold_mm = { O2 = 0.05 }", "vessel_network.kind"),
        ("file = \"missing.csv\"\nhold_mm = { O2 = 0.05 }", "vessel_network.file"),
        ("seed = 1\nkind = \"straight\"\nradius_um = 5.0\nspacing_um = 100.0\nhold_mm = { O3 = 0.05 }", "vessel_network.hold_mm.O3"),
        ("seed = 1\nkind = \"straight\"\nradius_um = 5.0\nspacing_um = 100.0\nhold_mm = { O2 = 0.05 }\nexchange = { O2 = { permeability_um_per_s = 1.0, blood_mm = 0.1 } }", "vessel_network.exchange.O2"),
        ("seed = 1\nkind = \"straight\"\nradius_um = 5.0\nspacing_um = 100.0\ntissue_spacing_um = { normal = 50.0 }\nhold_mm = { O2 = 0.05 }", "vessel_network.tissue_spacing_um.normal"),
        ("seed = 1\nkind = \"straight\"\nradius_um = 5.0\nspacing_um = 100.0\ntissue_spacing_um = { tumor = 200.0 }\nhold_mm = { O2 = 0.05 }", "vessel_network.tissue_spacing_um.tumor"),
        ("seed = 1\nkind = \"branching\"\nradius_um = 5.0\nspacing_um = 100.0\ntissue_spacing_um = { normal = 200.0 }\nhold_mm = { O2 = 0.05 }", "vessel_network.tissue_spacing_um"),
    ];
    for (net, field) in cases {
        let e = load_in(dir.path(), &network_toml([8, 8, 8], net)).unwrap_err();
        let msg = e.to_string();
        println!("{msg}");
        assert_eq!(e.field, field, "{msg}");
        assert!(
            msg.contains("scenario.toml") && msg.contains("Fix:"),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Tissue masks

fn mask_toml(tissue: &str) -> String {
    format!(
        r#"
name = "masks"
[grid]
shape = [4, 3, 3]
voxel_um = 10.0
[time]
dt_s = 1.0
end_s = 1.0
[tissues.tumour]
{tissue}
[species.O2]
diffusion_um2_per_s = 2000.0
"#
    )
}

fn npy_u8(shape: &str, data: &[u8], descr: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn npy_mask_sets_the_tissue_of_exactly_its_voxels() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 36];
    // a[k, j, i] = voxel (i, j, k): mark (3, 2, 1) and (0, 0, 0).
    data[3 + 4 * (2 + 3)] = 1;
    data[0] = 255;
    std::fs::write(
        dir.path().join("tumour.npy"),
        npy_u8("(3, 3, 4)", &data, "|u1"),
    )
    .unwrap();
    let s =
        load_in(dir.path(), &mask_toml("mask = \"tumour.npy\"")).unwrap_or_else(|e| panic!("{e}"));
    let m = Model::build(&s);
    let tumour: Vec<usize> = (0..36)
        .filter(|&v| m.mask[v] & TISSUE_ID_MASK == 1)
        .collect();
    println!("npy mask: tumour voxels {tumour:?}");
    assert_eq!(tumour, vec![0, 3 + 4 * (2 + 3)]);
}

#[test]
fn png_stack_mask_rows_run_from_high_y_like_output_slices() {
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("tumour_masks");
    std::fs::create_dir(&stack).unwrap();
    for k in 0..3u32 {
        let mut img = image::GrayImage::new(4, 3);
        // Slice 0: pixel (col 1, row 0) = voxel (1, ny − 1 = 2, 0). Slice 1: 16-bit below.
        if k == 0 {
            img.put_pixel(1, 0, image::Luma([200]));
            img.save(stack.join(format!("slice_{k:04}.png"))).unwrap();
        } else if k == 2 {
            img.save(stack.join(format!("slice_{k:04}.png"))).unwrap();
        } else {
            let mut img16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::new(4, 3);
            img16.put_pixel(3, 2, image::Luma([1000]));
            img16.save(stack.join(format!("slice_{k:04}.png"))).unwrap();
        }
    }
    let s = load_in(dir.path(), &mask_toml("mask = \"tumour_masks\""))
        .unwrap_or_else(|e| panic!("{e}"));
    let m = Model::build(&s);
    let tumour: Vec<usize> = (0..36)
        .filter(|&v| m.mask[v] & TISSUE_ID_MASK == 1)
        .collect();
    println!("png mask: tumour voxels {tumour:?}");
    // (1, 2, 0) and (3, 0, 1).
    assert_eq!(tumour, vec![1 + 4 * 2, 3 + 4 * 3]);
}

#[test]
fn mask_errors_name_file_field_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong_shape.npy"),
        npy_u8("(4, 3, 3)", &[0; 36], "|u1"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("complex.npy"),
        npy_u8("(3, 3, 4)", &[0; 288], "<c8"),
    )
    .unwrap();
    let stack = dir.path().join("short_stack");
    std::fs::create_dir(&stack).unwrap();
    image::GrayImage::new(4, 3)
        .save(stack.join("a.png"))
        .unwrap();
    let cases = [
        ("mask = \"wrong_shape.npy\"", "shape"),
        ("mask = \"complex.npy\"", "dtype"),
        ("mask = \"nothere.npy\"", "cannot read"),
        ("mask = \"short_stack\"", "nz = 3"),
        ("mask = \"wrong_shape.npy\"\nshape = \"sphere\"", "not both"),
    ];
    for (tissue, needle) in cases {
        let e = load_in(dir.path(), &mask_toml(tissue)).unwrap_err();
        let msg = e.to_string();
        println!("{msg}");
        assert_eq!(e.field, "tissues.tumour.mask", "{msg}");
        assert!(
            msg.contains(needle) && msg.contains("scenario.toml") && msg.contains("Fix:"),
            "{msg}"
        );
    }
}

/// `tissue` and `vessels` in `output.fields` are written like fields: the `.npy` holds each
/// voxel's tissue index (0 = normal) and 1 exactly in the voxels of kept capillaries, not
/// in other held voxels (here the O2 face held at x = 0), in every format asked for.
#[test]
fn tissue_and_vessel_masks_are_written_as_fields() {
    let dir = tempfile::tempdir().unwrap();
    let text = network_toml(
        [20, 20, 10],
        "seed = 5\nkind = \"straight\"\naxis = \"z\"\nspacing_um = 40.0\nradius_um = 4.0\nhold_mm = { O2 = 0.054 }\ntissue_spacing_um = { tumour = 80.0 }",
    )
    .replace(
        "[vessel_network]",
        "[tissues.tumour]\nshape = \"box\"\nmin_um = [0.0, 0.0, 50.0]\nmax_um = [200.0, 200.0, 100.0]\n[vessel_network]",
    )
    .replace(
        "[species.O2]\ndiffusion_um2_per_s = 2000.0",
        "[species.O2]\ndiffusion_um2_per_s = 2000.0\nboundary = { all = \"zero_flux\", x_min = 0.054 }",
    ) + "[output]\nfields = [\"O2\", \"tissue\", \"vessels\"]\ntiff = true\n";
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, &text).unwrap();
    let scenario = config::load_file(&path, &[]).unwrap();
    let model = Model::build(&scenario);
    let out = common::run_cpu(dir.path(), &path, "run");
    let tissue = common::field_at(&out, "tissue", 0.0);
    let vessels = common::field_at(&out, "vessels", 0.0);
    let tumour = scenario
        .tissues
        .iter()
        .position(|t| t.name == "tumour")
        .unwrap() as f64;
    let (mut n_vessel, mut n_face, mut n_tumour) = (0, 0, 0);
    for ix in 0..model.mask.len() {
        assert_eq!(
            tissue[ix],
            f64::from(model.mask[ix] & TISSUE_ID_MASK),
            "tissue at {ix}"
        );
        let i = ix % 20;
        let held = model.mask[ix] & !TISSUE_ID_MASK != 0;
        n_tumour += usize::from(tissue[ix] == tumour);
        if i == 0 {
            assert!(held, "the x = 0 face holds O2");
            n_face += usize::from(vessels[ix] == 0.0);
        } else {
            // Away from the face, a voxel is a vessel exactly where the network holds O2.
            assert_eq!(vessels[ix], f64::from(u8::from(held)), "vessels at {ix}");
            n_vessel += usize::from(held);
        }
    }
    println!(
        "masks: {n_tumour} tumour voxels of {}, {n_vessel} vessel voxels off the face, {n_face} of the 200 held face voxels outside vessels",
        model.mask.len()
    );
    assert!(n_vessel > 0 && n_tumour == 2000);
    assert!(n_face > 150, "the held face is not a vessel");
    for rel in [
        "tiff/tissue_t0000000.0s.tif",
        "tiff/vessels_t0000000.0s.tif",
        "png16/vessels/t0000000.0s/z005.png",
        "png/tissue/z005_t0000000.0s.png",
        "vessels_centrelines.vtp",
    ] {
        assert!(out.join(rel).is_file(), "missing {rel}");
    }

    // The centre lines (VTK PolyData for ParaView) run through the vessel mask: every
    // point lies in a vessel voxel, and every vessel voxel off the face has a point
    // within half its diagonal plus the capillary radius (4 µm) of its centre.
    let vtp = std::fs::read_to_string(out.join("vessels_centrelines.vtp")).unwrap();
    let array = |name: &str| -> Vec<f64> {
        let start = vtp.find(&format!("Name=\"{name}\"")).expect(name);
        let body = &vtp[start..];
        let body = &body[body.find('>').unwrap() + 1..body.find("</DataArray>").unwrap()];
        body.split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let points: Vec<[f64; 3]> = array("position_um")
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let offsets = array("offsets");
    assert_eq!(offsets.last().copied(), Some(points.len() as f64));
    assert!(array("radius_um").iter().all(|&r| r == 4.0));
    let voxel = |p: &[f64; 3]| {
        let [i, j, k] = p.map(|c| (c / 10.0) as usize);
        i + 20 * (j + 20 * k)
    };
    for p in &points {
        assert_eq!(
            vessels[voxel(p)],
            1.0,
            "centre-line point {p:?} outside the mask"
        );
    }
    let reach = 5.0 * 3f64.sqrt() + 4.0;
    let mut covered = 0;
    for ix in (0..model.mask.len()).filter(|&ix| vessels[ix] == 1.0 && ix % 20 != 0) {
        let c = [ix % 20, (ix / 20) % 20, ix / 400].map(|n| (n as f64 + 0.5) * 10.0);
        let near = points.iter().any(|p| {
            let d2: f64 = (0..3).map(|a| (p[a] - c[a]).powi(2)).sum();
            d2 <= reach * reach
        });
        assert!(near, "vessel voxel {ix} has no centre line near it");
        covered += 1;
    }
    println!(
        "centre lines: {} polylines, {} points, every one of {covered} vessel voxels reached",
        offsets.len(),
        points.len()
    );
}

/// The centre lines of an unthinned network (straight and branching) have the network's
/// length inside the domain, as the generator measures it, to within the sampling (a
/// quarter voxel at each end of each clipped segment).
#[test]
fn centre_lines_have_the_network_length() {
    let dir = tempfile::tempdir().unwrap();
    for net in [
        "seed = 5\nkind = \"straight\"\naxis = \"z\"\nspacing_um = 40.0\nradius_um = 4.0\nhold_mm = { O2 = 0.054 }",
        "seed = 3\nkind = \"branching\"\nspacing_um = 60.0\nradius_um = 4.0\nhold_mm = { O2 = 0.054 }",
    ] {
        let s = load_in(dir.path(), &network_toml([20, 20, 10], net)).unwrap();
        let m = Model::build(&s);
        let lines = ionfield::output::centrelines::centrelines(&s, &m);
        let total: f64 = lines.iter().map(|l| l.length_um()).sum();
        let network = s.vessel_network.as_ref().unwrap();
        let bound = 2.0 * 2.5 * network.n_segments as f64;
        println!(
            "{}: {} polylines, {total:.1} µm against the generator's {:.1} µm (bound {bound:.1})",
            network.kind,
            lines.len(),
            network.total_length_um
        );
        assert!(!lines.is_empty());
        assert!(
            (total - network.total_length_um).abs() <= bound,
            "{total} vs {}",
            network.total_length_um
        );
    }
}

/// A mask listed twice, or given a range, is refused with the field named.
#[test]
fn mask_fields_refuse_duplicates_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let base = network_toml(
        [12, 12, 6],
        "seed = 5\nkind = \"straight\"\naxis = \"z\"\nspacing_um = 40.0\nradius_um = 4.0\nhold_mm = { O2 = 0.054 }",
    );
    for (output, field) in [
        ("fields = [\"tissue\", \"tissue\"]", "output.fields[1]"),
        (
            "fields = [\"O2\", \"vessels\"]\nranges_mm = { vessels = [0.0, 2.0] }",
            "output.ranges_mm.vessels",
        ),
    ] {
        let e = load_in(dir.path(), &format!("{base}[output]\n{output}\n")).unwrap_err();
        let msg = e.to_string();
        println!("{msg}");
        assert!(msg.contains(field) && msg.contains("Fix:"), "{msg}");
    }
}
