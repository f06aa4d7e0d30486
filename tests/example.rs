//! `examples/run_preset.rs` runs a preset through `ionfield::sim::Simulation` with a custom
//! callback and writes one field: run its binary (built by `cargo test`) and check both.

#[test]
fn example_run_preset_prints_every_minute_and_writes_the_field() {
    // Test binaries live in target/<profile>/deps/, examples in target/<profile>/examples/.
    let exe = std::env::current_exe().expect("test binary path");
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples/run_preset");
    assert!(
        example.is_file(),
        "{} is built by cargo test",
        example.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&example)
        .arg(dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The callback's schedule: t = 0, 60, 120 and the end, 180 s.
    let times: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("t = "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times, [0.0, 60.0, 120.0, 180.0], "{stdout}");
    let oh: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("OH = ").nth(1))
        .map(|v| v.trim_end_matches(" mM").parse().unwrap())
        .collect();
    assert!(oh.iter().all(|v| v.is_finite() && *v >= 0.0), "{oh:?}");
    assert!(oh[3] > oh[0], "the Fe dose makes OH· in the tumour: {oh:?}");
    let npy = std::fs::read(dir.path().join("OH_final.npy")).expect("OH_final.npy written");
    assert_eq!(&npy[..6], b"\x93NUMPY");
    // NPY v1: magic, version, u16 header length, header, then 16³ f32 values.
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!(npy.len(), 10 + header_len + 16 * 16 * 16 * 4);
    let header = String::from_utf8_lossy(&npy[10..10 + header_len]);
    assert!(header.contains("(16, 16, 16)"), "{header}");
}
