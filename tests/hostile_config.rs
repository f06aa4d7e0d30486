//! Extreme and hostile input (issue 18, the config and chemistry part): every row runs the
//! real binary (`ionfield check …`, so nothing simulates) and must exit 2 with one message
//! naming the field, the count or limit and the fix — never a panic, an abort, an
//! out-of-memory or a hang (each run has a deadline). Then a seeded fuzz of the expression
//! parsers and of the scenario loader, in-process, for a few seconds each: only `Ok` or a
//! clean error, never a panic.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(60);

struct Out {
    code: i32,
    stderr: String,
    elapsed: Duration,
}

/// `ionfield args…` in `dir`, killed (and the test failed) past [`DEADLINE`].
fn ionfield(dir: &Path, args: &[&str]) -> Out {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ionfield");
    // Read stderr on a thread so a full pipe cannot block the child.
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ionfield {args:?} ran past {DEADLINE:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = reader.join().expect("stderr reader");
    let code = status.code().unwrap_or_else(|| {
        panic!("ionfield {args:?} was killed by a signal ({status:?})\nstderr:\n{stderr}")
    });
    Out {
        code,
        stderr,
        elapsed: start.elapsed(),
    }
}

/// One hostile input: the arguments after `ionfield`, the exit code and words the
/// message must contain.
struct Row<'a> {
    what: &'a str,
    args: Vec<String>,
    code: i32,
    needles: &'a [&'a str],
}

fn check_row(dir: &Path, row: &Row) -> Duration {
    let args: Vec<&str> = row.args.iter().map(String::as_str).collect();
    let out = ionfield(dir, &args);
    let shown: String = out.stderr.chars().take(600).collect();
    println!(
        "{}: exit {} in {:.2} s: {}",
        row.what,
        out.code,
        out.elapsed.as_secs_f64(),
        shown.trim_end()
    );
    assert!(
        !out.stderr.contains("panicked") && out.code != 101 && out.code != 134,
        "{}: crashed (exit {})\n{}",
        row.what,
        out.code,
        out.stderr
    );
    assert_eq!(
        out.code, row.code,
        "{}: exit code\n{}",
        row.what, out.stderr
    );
    let mut needles = row.needles.to_vec();
    if row.code == 2 {
        needles.push("Fix");
        let lines = out.stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            out.stderr.len() < 2000,
            "{}: the message should be short, got {} bytes in {lines} lines",
            row.what,
            out.stderr.len()
        );
    }
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "{}: stderr should contain {n:?}, got:\n{}",
            row.what,
            out.stderr
        );
    }
    out.elapsed
}

/// `check fe_fenton_cdt --set a --set b …`.
fn preset_with(sets: &[&str]) -> Vec<String> {
    let mut v = vec!["check".to_string(), "fe_fenton_cdt".to_string()];
    for s in sets {
        v.push("--set".into());
        v.push(s.to_string());
    }
    v
}

fn check_file(path: &Path) -> Vec<String> {
    vec!["check".into(), path.display().to_string()]
}

/// A small scenario with a vessel network and a masked tissue, `net` the keys of its
/// `[vessel_network]` besides `hold_mm`, `mask` the mask file.
fn scenario(net: &str, mask: Option<&str>) -> String {
    let tissue = match mask {
        Some(m) => format!("[tissues.tumour]\nmask = \"{m}\"\n"),
        None => String::new(),
    };
    format!(
        r#"name = "hostile"
[grid]
shape = [8, 8, 8]
voxel_um = 10
[time]
dt_s = 1
end_s = 10
{tissue}
[species.O2]
diffusion_um2_per_s = 2000
[vessel_network]
{net}
hold_mm = {{ O2 = 0.05 }}
"#
    )
}

const STRAIGHT: &str = "kind = \"straight\"\nseed = 1\nspacing_um = 40\nradius_um = 4";

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn hostile_inputs_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    // Files that are not regular files, or too large.
    mkfifo(&d.join("fifo.toml"));
    mkfifo(&d.join("fifo.csv"));
    mkfifo(&d.join("fifo.npy"));
    std::fs::create_dir(d.join("folder.toml")).expect("mkdir");
    let big = std::fs::File::create(d.join("big.csv")).expect("create");
    big.set_len(100 << 20).expect("a sparse 100 MiB file"); // > 64 MiB, no disk used
    drop(big);

    let fifo_include = write(
        "include_fifo.toml",
        &format!("include = [\"fifo.toml\"]\n{}", scenario(STRAIGHT, None)),
    );
    let zero_include = write(
        "include_zero.toml",
        &format!("include = [\"/dev/zero\"]\n{}", scenario(STRAIGHT, None)),
    );
    let fifo_csv = write("csv_fifo.toml", &scenario("file = \"fifo.csv\"", None));
    let urandom_csv = write(
        "csv_urandom.toml",
        &scenario("file = \"/dev/urandom\"", None),
    );
    let big_csv = write("csv_big.toml", &scenario("file = \"big.csv\"", None));
    let fifo_mask = write("mask_fifo.toml", &scenario(STRAIGHT, Some("fifo.npy")));
    let dev_mask = write("mask_dev.toml", &scenario(STRAIGHT, Some("/dev/zero")));
    let density = write(
        "density.toml",
        &scenario(
            "kind = \"straight\"\nseed = 1\ndensity_mm_per_mm3 = 1e20\nradius_um = 4",
            None,
        ),
    );
    let branching = write(
        "branching.toml",
        &scenario(
            "kind = \"branching\"\nseed = 1\nspacing_um = 0.01\nradius_um = 4",
            None,
        ),
    );

    let deep_parens = format!(
        "reactions.np_fe_dissolution.rate={}k_fe_diss{}",
        "(".repeat(8000),
        ")".repeat(8000)
    );
    let deep_abs = format!(
        "reactions.np_fe_dissolution.rate={}k_fe_diss{}",
        "abs(".repeat(10_000),
        ")".repeat(10_000)
    );
    let long_sum = format!(
        "reactions.np_fe_dissolution.rate=NP_Fe{}",
        " + NP_Fe".repeat(10_000)
    );

    let rows = [
        // 1. Counts of output times, summary stops and steps.
        Row {
            what: "end_s = 1e30",
            args: preset_with(&["time.end_s=1e30"]),
            code: 2,
            needles: &["time.end_s", "1e30", "limit of 1e8 steps"],
        },
        Row {
            what: "200 000 output times",
            args: preset_with(&["time.end_s=1e7", "time.output_interval_s=50"]),
            code: 2,
            needles: &["time.end_s", "200001 output times", "limit of 100000"],
        },
        Row {
            what: "output interval 1e-9 s",
            args: preset_with(&["time.output_interval_s=1e-9"]),
            code: 2,
            needles: &["time.output_interval_s", "1201 output times", "1e-9"],
        },
        Row {
            what: "summary every 1e-4 s",
            args: preset_with(&["output.summary_interval_s=1e-4"]),
            code: 2,
            needles: &[
                "output.summary_interval_s",
                "6000000 summary stops",
                "1000000",
            ],
        },
        Row {
            // The default summary interval keeps any run at 1440 summary stops (issue 14);
            // asked for every minute, 2.85 years of model time are 1.5 million stops.
            what: "minute summaries of a long run",
            args: preset_with(&[
                "time.end_s=9e7",
                "time.dt_s=1",
                "time.output_interval_s=1e7",
                "output.summary_interval=1 min",
            ]),
            code: 2,
            needles: &[
                "output.summary_interval",
                "1500000 summary stops",
                "limit of 1000000 stops",
            ],
        },
        Row {
            what: "figure time of a huge run",
            args: preset_with(&["output.figure.times_s=[1e30]"]),
            code: 2,
            needles: &["output.figure.times_s[0]"],
        },
        // 2. Vessel networks: counts before generating, file size before reading.
        Row {
            what: "spacing_um = 1e-308",
            args: preset_with(&["vessel_network.spacing_um=1e-308"]),
            code: 2,
            needles: &["vessel_network.spacing_um", "limit of 1000000 segments"],
        },
        Row {
            what: "spacing_um = 0.01",
            args: preset_with(&["vessel_network.spacing_um=0.01"]),
            code: 2,
            needles: &[
                "vessel_network.spacing_um",
                "4.096e9 capillaries",
                "1000000",
            ],
        },
        Row {
            what: "density 1e20",
            args: check_file(&density),
            code: 2,
            needles: &["vessel_network.density_mm_per_mm3", "limit of 1000000"],
        },
        Row {
            what: "branching spacing 0.01",
            args: check_file(&branching),
            code: 2,
            needles: &["vessel_network.spacing_um", "branching segments", "1000000"],
        },
        Row {
            what: "100 MiB vessel CSV",
            args: check_file(&big_csv),
            code: 2,
            needles: &["vessel_network.file", "big.csv", "limit of 67108864 bytes"],
        },
        // 4. Expression depth.
        Row {
            what: "8000 parentheses",
            args: preset_with(&[&deep_parens]),
            code: 2,
            needles: &[
                "reactions.np_fe_dissolution.rate",
                "nested too deeply",
                "256",
                "characters])",
            ],
        },
        Row {
            what: "10 000 abs(",
            args: preset_with(&[&deep_abs]),
            code: 2,
            needles: &["reactions.np_fe_dissolution.rate", "nested too deeply"],
        },
        Row {
            what: "a sum of 10 001 terms",
            args: preset_with(&[&long_sum]),
            code: 2,
            needles: &["reactions.np_fe_dissolution.rate", "nested too deeply"],
        },
        // 5. Magnitudes beyond f32.
        Row {
            what: "initial 1e300 mM",
            args: preset_with(&["species.O2.initial.uniform_mm=1e300"]),
            code: 2,
            needles: &["species.O2.initial.uniform_mm", "f32", "1e300"],
        },
        Row {
            what: "voxel 1e300 µm",
            args: preset_with(&["grid.voxel_um=1e300"]),
            code: 2,
            needles: &["grid.voxel_um", "f32", "1e300"],
        },
        Row {
            what: "voxel 1e-300 µm",
            args: preset_with(&["grid.voxel_um=1e-300"]),
            code: 2,
            needles: &["grid.voxel_um", "found 1e-300"],
        },
        Row {
            what: "voxel 1e20 µm",
            args: preset_with(&["grid.voxel_um=1e20"]),
            code: 2,
            needles: &["grid.voxel_um", "limit of 1e6 µm"],
        },
        Row {
            what: "D 1e300",
            args: preset_with(&["species.O2.diffusion_um2_per_s=1e300"]),
            code: 2,
            needles: &["species.O2.diffusion_um2_per_s", "f32"],
        },
        Row {
            what: "D·dt/dx² beyond 1e30",
            args: preset_with(&["species.O2.diffusion_um2_per_s=3e38"]),
            code: 2,
            needles: &["species.O2.diffusion_um2_per_s", "r = D·dt/dx²"],
        },
        Row {
            what: "dt 1e300",
            args: preset_with(&["time.dt_s=1e300"]),
            code: 2,
            needles: &["time.dt_s", "f32", "1e300"],
        },
        Row {
            what: "max_diffusion_r 1e-12",
            args: preset_with(&["time.max_diffusion_r=1e-12"]),
            code: 2,
            needles: &["time.max_diffusion_r", "sub-steps", "100000"],
        },
        Row {
            what: "spin-up tolerance of 0",
            args: preset_with(&["time.spin_up_tolerance_per_h=0"]),
            code: 2,
            needles: &["time.spin_up_tolerance_per_h", "[1e-8, 10]", "0.01"],
        },
        // 6. Numbers beyond f64 on the command line.
        Row {
            what: "end_s = 1e999",
            args: preset_with(&["time.end_s=1e999"]),
            code: 2,
            needles: &["time.end_s", "out of the range of f64"],
        },
        // 7. Not regular files.
        Row {
            what: "FIFO config",
            args: check_file(&d.join("fifo.toml")),
            code: 2,
            needles: &["fifo.toml", "FIFO"],
        },
        Row {
            what: "directory config",
            args: check_file(&d.join("folder.toml")),
            code: 2,
            needles: &["folder.toml", "directory"],
        },
        Row {
            what: "/dev/zero config",
            args: vec!["check".into(), "/dev/zero".into()],
            code: 2,
            needles: &["/dev/zero", "character device"],
        },
        Row {
            what: "FIFO include",
            args: check_file(&fifo_include),
            code: 2,
            needles: &["fifo.toml", "FIFO"],
        },
        Row {
            what: "/dev/zero include",
            args: check_file(&zero_include),
            code: 2,
            needles: &["/dev/zero", "character device"],
        },
        Row {
            what: "FIFO vessel CSV",
            args: check_file(&fifo_csv),
            code: 2,
            needles: &["vessel_network.file", "FIFO"],
        },
        Row {
            what: "/dev/urandom vessel CSV",
            args: check_file(&urandom_csv),
            code: 2,
            needles: &["vessel_network.file", "character device"],
        },
        Row {
            what: "FIFO mask",
            args: check_file(&fifo_mask),
            code: 2,
            needles: &["tissues.tumour.mask", "FIFO"],
        },
        Row {
            what: "/dev/zero mask",
            args: check_file(&dev_mask),
            code: 2,
            needles: &["tissues.tumour.mask"],
        },
        // 8. Unknown preset.
        Row {
            what: "unknown preset",
            args: vec!["check".into(), "fe_fenton_cdx".into()],
            code: 2,
            needles: &["fe_fenton_cdx", "did you mean `fe_fenton_cdt`", "`zno2`"],
        },
    ];
    let start = Instant::now();
    for row in &rows {
        check_row(d, row);
    }
    println!(
        "{} hostile inputs in {:.1} s",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
}

/// Reproducer 3, vessel placement is O(n): a 64 mm grid at 100 µm spacing places 409 600
/// straight capillaries (it took minutes with the O(n²) placement).
#[test]
fn many_straight_capillaries_are_placed_quickly() {
    use ionfield::config::vessel_network::straight;
    let extent = glam::DVec3::splat(64_000.0);
    let start = Instant::now();
    let segs = straight(extent, 2, 100.0, 5.0, 7);
    let s = start.elapsed().as_secs_f64();
    println!("{} capillaries placed in {s:.2} s", segs.len());
    assert_eq!(segs.len(), 409_600);
    assert!(s < 20.0, "placement took {s} s");
}

/// A CSV of more than [`ionfield::config::vessel_network::MAX_NETWORK_SEGMENTS`] segments is
/// refused at the first row over the limit.
#[test]
fn vessel_csv_row_limit() {
    use ionfield::config::vessel_network::{parse_csv, MAX_NETWORK_SEGMENTS};
    let mut text = String::from("polyline,x_um,y_um,z_um,radius_um\n");
    for i in 0..MAX_NETWORK_SEGMENTS + 2 {
        text.push_str(&format!("0,{i},0,0,1\n"));
    }
    let e = parse_csv(&text).unwrap_err();
    assert_eq!(e.line, MAX_NETWORK_SEGMENTS + 3);
    assert!(e.problem.contains("1000000"), "{}", e.problem);
}

// ---- fuzz: seeded, time-boxed, in-process ----

/// SplitMix64 (Vigna), enough for test-case generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Fragments of rate expressions, equations and units, good and bad.
const PIECES: &[&str] = &[
    "k", "A", "B", "Fe2", "H2O2", "1", "0", "2.5", "1e-3", "1e999", "1e-999", ".5", "1.2.3", "+",
    "-", "*", "/", "^", "(", ")", "(", ")", ",", "->", "abs(", "exp(", "ln(", "sqrt(", "min(",
    "max(", "step(", "mM", "s", "um", "µm", "pH", "1/(mM*s)", "^-1", "^(1/3)", " ", "  ", "#", "é",
    "\u{0}", "∞", "nan", "inf", "e", "E+", "_", "2 GSH", "→",
];

fn random_expr(rng: &mut Rng) -> String {
    let n = 1 + rng.below(24);
    let mut s: String = (0..n).map(|_| rng.pick(PIECES)).collect();
    // Sometimes very deep or very long.
    match rng.below(40) {
        0 => s = format!("{}{s}{}", "(".repeat(300), ")".repeat(300)),
        1 => s = format!("{}{s}", "-".repeat(400)),
        2 => s = s.repeat(200),
        _ => {}
    }
    s
}

/// Runs `case` until `budget` is spent; `IONFIELD_FUZZ_SECONDS=N` sets every budget to N s
/// for a longer run (README, Tests).
fn time_boxed(budget: Duration, mut case: impl FnMut(u64)) -> u64 {
    let budget = std::env::var("IONFIELD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(budget, Duration::from_secs_f64);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        case(n);
        n += 1;
    }
    n
}

#[test]
fn fuzz_expression_parsers_never_panic() {
    let mut rng = Rng(0x18a);
    let start = Instant::now();
    let n = time_boxed(Duration::from_secs(3), |_| {
        let text = random_expr(&mut rng);
        let r = std::panic::catch_unwind(|| {
            let _ = ionfield::chem::parse::parse_expr(&text);
            let _ = ionfield::chem::parse_equation(&text);
            let _ = ionfield::chem::parse_unit(&text);
        });
        assert!(r.is_ok(), "a parser panicked on {text:?}");
    });
    println!(
        "expression fuzz: {n} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(n > 100);
}

/// Values that stress the loader, put in place of a value of the default scenario.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1e300",
    "-1e300",
    "1e-300",
    "1e38",
    "3.5e38",
    "nan",
    "inf",
    "-inf",
    "1e30",
    "\"x\"",
    "[]",
    "[1, 2, 3]",
    "[1e9, 1e9, 1e9]",
    "{}",
    "true",
    "18446744073709551615",
    "-9223372036854775808",
    "\"(((((\"",
    "\"abs(abs(abs(A)))\"",
    "\"A -> 2 A\"",
    "0.5",
    "\"/dev/zero\"",
    "[[1]]",
];

#[test]
fn fuzz_scenario_loader_never_panics() {
    use ionfield::config::{load_str, DEFAULT_SCENARIO_TOML, DEFAULT_SOURCE};
    let base: Vec<&str> = DEFAULT_SCENARIO_TOML.lines().collect();
    let valued: Vec<usize> = (0..base.len())
        .filter(|&i| base[i].contains(" = ") && !base[i].trim_start().starts_with('#'))
        .collect();
    let mut rng = Rng(0x18b);
    let (mut ok, mut err) = (0u64, 0u64);
    let start = Instant::now();
    let n = time_boxed(Duration::from_secs(4), |_| {
        let mut lines: Vec<String> = base.iter().map(|l| l.to_string()).collect();
        // Up to three lines get a hostile value; sometimes one line is cut or duplicated.
        for _ in 0..rng.below(3) {
            let i = valued[rng.below(valued.len())];
            let key = lines[i].split(" = ").next().unwrap_or("").to_string();
            lines[i] = format!("{key} = {}", rng.pick(VALUES));
        }
        match rng.below(6) {
            0 => {
                let i = rng.below(lines.len());
                let cut = lines[i].len() / 2;
                let cut = (0..=cut)
                    .rev()
                    .find(|&c| lines[i].is_char_boundary(c))
                    .unwrap_or(0);
                lines[i].truncate(cut);
            }
            1 => {
                let i = rng.below(lines.len());
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            _ => {}
        }
        let text = lines.join("\n");
        let sets = [format!("time.end_s={}", rng.pick(VALUES))];
        let sets: &[String] = if rng.below(4) == 0 { &sets } else { &[] };
        // The built-in source, so that its `include`s resolve in the catalogue.
        let r = std::panic::catch_unwind(|| load_str(&text, DEFAULT_SOURCE, sets));
        match r {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "a multi-line error: {msg}");
                assert!(msg.len() < 4000, "a very long error: {} bytes", msg.len());
                err += 1;
            }
            Err(_) => panic!("the loader panicked on:\n{text}\nwith {sets:?}"),
        }
    });
    println!(
        "loader fuzz: {n} cases ({ok} loaded, {err} clean errors) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(n > 10);
}

/// `check` of a network file shows its first vessels and the count of the rest: its output
/// does not grow with the file (a million segments printed 600 MB of JSON).
#[test]
fn check_of_a_large_network_file_prints_a_bounded_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut csv = String::from("polyline,x_um,y_um,z_um,radius_um\n");
    for p in 0..5000 {
        let (x, y) = (5.0 + (p % 70) as f64, 5.0 + (p / 70) as f64);
        csv.push_str(&format!("{p},{x},{y},5,2\n{p},{x},{y},70,2\n"));
    }
    std::fs::write(d.join("net.csv"), csv).unwrap();
    std::fs::write(d.join("net.toml"), scenario("file = \"net.csv\"", None)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(["check", "net.toml"])
        .current_dir(d)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5000 segments"), "{stdout}");
    assert!(
        stdout.contains("… and 4980 more vessels (5000 in all"),
        "{stdout}"
    );
    assert!(stdout.len() < 100_000, "{} bytes", stdout.len());
}
