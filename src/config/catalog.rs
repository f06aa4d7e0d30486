//! The built-in catalogue: every preset in `configs/therapies/` and every file they include,
//! compiled into the binary, so `ionfield run` (the default), `ionfield run NAME` and
//! `ionfield list` work from any folder. A test checks that this list and the `configs/`
//! folder hold the same files.

/// The built-in scenario, used when no CONFIG is given: the Fe Fenton CDT preset over a day
/// in a 1.28 mm block.
pub const DEFAULT_SCENARIO_TOML: &str =
    include_str!("../../configs/therapies/fe_fenton_cdt_day.toml");
/// Source name of [`DEFAULT_SCENARIO_TOML`] in errors and in [`super::Scenario::source`].
pub const DEFAULT_SOURCE: &str = "<built-in default>";

/// (path relative to the repository root, text).
pub const FILES: &[(&str, &str)] = &[
    (
        "configs/chemistry/baseline.toml",
        include_str!("../../configs/chemistry/baseline.toml"),
    ),
    (
        "configs/chemistry/bioheat.toml",
        include_str!("../../configs/chemistry/bioheat.toml"),
    ),
    (
        "configs/chemistry/intracellular_ph.toml",
        include_str!("../../configs/chemistry/intracellular_ph.toml"),
    ),
    (
        "configs/chemistry/photothermal.toml",
        include_str!("../../configs/chemistry/photothermal.toml"),
    ),
    (
        "configs/chemistry/photodynamic.toml",
        include_str!("../../configs/chemistry/photodynamic.toml"),
    ),
    (
        "configs/chemistry/sonodynamic.toml",
        include_str!("../../configs/chemistry/sonodynamic.toml"),
    ),
    (
        "configs/chemistry/fe_particle.toml",
        include_str!("../../configs/chemistry/fe_particle.toml"),
    ),
    (
        "configs/tissue/tumour_640um.toml",
        include_str!("../../configs/tissue/tumour_640um.toml"),
    ),
    (
        "configs/tissue/tumour_1280um.toml",
        include_str!("../../configs/tissue/tumour_1280um.toml"),
    ),
    (
        "configs/tissue/tumour_1280um_sphere.toml",
        include_str!("../../configs/tissue/tumour_1280um_sphere.toml"),
    ),
    (
        "configs/time/day.toml",
        include_str!("../../configs/time/day.toml"),
    ),
    (
        "configs/therapies/ag_nanoparticles.toml",
        include_str!("../../configs/therapies/ag_nanoparticles.toml"),
    ),
    (
        "configs/therapies/cao2_calcium_overload.toml",
        include_str!("../../configs/therapies/cao2_calcium_overload.toml"),
    ),
    (
        "configs/therapies/cao2_fe_combination.toml",
        include_str!("../../configs/therapies/cao2_fe_combination.toml"),
    ),
    (
        "configs/therapies/cu_chelation.toml",
        include_str!("../../configs/therapies/cu_chelation.toml"),
    ),
    (
        "configs/therapies/cu_fenton_like.toml",
        include_str!("../../configs/therapies/cu_fenton_like.toml"),
    ),
    (
        "configs/therapies/fe_fenton_cdt.toml",
        include_str!("../../configs/therapies/fe_fenton_cdt.toml"),
    ),
    (
        "configs/therapies/fe_fenton_cdt_day.toml",
        include_str!("../../configs/therapies/fe_fenton_cdt_day.toml"),
    ),
    (
        "configs/therapies/gox_mn_cascade.toml",
        include_str!("../../configs/therapies/gox_mn_cascade.toml"),
    ),
    (
        "configs/therapies/gox_starvation.toml",
        include_str!("../../configs/therapies/gox_starvation.toml"),
    ),
    (
        "configs/therapies/h_depletion.toml",
        include_str!("../../configs/therapies/h_depletion.toml"),
    ),
    (
        "configs/therapies/ionophore_na_k.toml",
        include_str!("../../configs/therapies/ionophore_na_k.toml"),
    ),
    (
        "configs/therapies/mg2si_o2_scavenging.toml",
        include_str!("../../configs/therapies/mg2si_o2_scavenging.toml"),
    ),
    (
        "configs/therapies/mn_fenton_bicarbonate.toml",
        include_str!("../../configs/therapies/mn_fenton_bicarbonate.toml"),
    ),
    (
        "configs/therapies/mno2_gsh_depletion.toml",
        include_str!("../../configs/therapies/mno2_gsh_depletion.toml"),
    ),
    (
        "configs/therapies/nacl_osmotic.toml",
        include_str!("../../configs/therapies/nacl_osmotic.toml"),
    ),
    (
        "configs/therapies/pdt_cao2_oxygen.toml",
        include_str!("../../configs/therapies/pdt_cao2_oxygen.toml"),
    ),
    (
        "configs/therapies/pdt_photofrin.toml",
        include_str!("../../configs/therapies/pdt_photofrin.toml"),
    ),
    (
        "configs/therapies/pt_cisplatin.toml",
        include_str!("../../configs/therapies/pt_cisplatin.toml"),
    ),
    (
        "configs/therapies/ptt_au_nanorods.toml",
        include_str!("../../configs/therapies/ptt_au_nanorods.toml"),
    ),
    (
        "configs/therapies/ptt_fe_cdt.toml",
        include_str!("../../configs/therapies/ptt_fe_cdt.toml"),
    ),
    (
        "configs/therapies/sdt_fe_cdt.toml",
        include_str!("../../configs/therapies/sdt_fe_cdt.toml"),
    ),
    (
        "configs/therapies/trpv1_capsaicin.toml",
        include_str!("../../configs/therapies/trpv1_capsaicin.toml"),
    ),
    (
        "configs/therapies/zno2.toml",
        include_str!("../../configs/therapies/zno2.toml"),
    ),
];

/// The built-in default scenario (`ionfield run` without CONFIG).
pub const DEFAULT_PATH: &str = "configs/therapies/fe_fenton_cdt_day.toml";

/// Prefix of the error/source names of catalogue files other than the default.
const PREFIX: &str = "<built-in> ";

/// The text of a catalogue file.
pub fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

/// How a catalogue file is named in errors and manifests.
pub fn source_name(path: &str) -> String {
    format!("{PREFIX}{path}")
}

/// The catalogue path behind a source name (`None` for files on disk).
pub fn virtual_path(source: &str) -> Option<&str> {
    if source == DEFAULT_SOURCE {
        Some(DEFAULT_PATH)
    } else {
        source.strip_prefix(PREFIX)
    }
}

/// The therapy presets: (name = file stem, catalogue path).
pub fn presets() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().filter_map(|(p, _)| {
        p.strip_prefix("configs/therapies/")
            .and_then(|f| f.strip_suffix(".toml"))
            .map(|name| (name, *p))
    })
}

/// The error for CONFIG given as a bare name (no folder, no `.toml`) that is neither an
/// existing file nor a preset: it lists the presets, with a "did you mean". `None` when
/// `config` exists, is a preset, or looks like a path (then reading it reports the error).
pub fn unknown_preset(config: &std::path::Path) -> Option<super::Error> {
    let name = config.to_str()?;
    let bare = !name.contains(['/', '\\']) && !name.ends_with(".toml");
    if !bare || config.exists() || presets().any(|(p, _)| p == name) {
        return None;
    }
    let names: Vec<&str> = presets().map(|(p, _)| p).collect();
    let mut e = super::Error::new(
        super::ErrorKind::Io,
        "",
        format!(
            "no such file, and no preset of that name{}",
            super::error::did_you_mean(name, names.iter().copied())
        ),
    )
    .fix(format!(
        "give a scenario file, or one of the presets {} (`ionfield list` describes them)",
        super::error::list(names.iter().copied())
    ));
    e.file = name.to_string();
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every catalogue scenario loads on a 4× coarser grid of the same size in µm, given
    /// with `--set grid.shape` and `grid.voxel_um` alone (as README's test-grid runs and
    /// Python example do): nothing in a preset is tied to its voxel count (slices default
    /// to the middle one, the figure's slice too).
    #[test]
    fn every_scenario_loads_on_a_coarser_grid() {
        let mut checked = 0;
        for (path, text) in FILES {
            if !path.starts_with("configs/") || path.starts_with("configs/sweeps/") {
                continue;
            }
            // Included pieces (chemistry, tissue, time) are not scenarios on their own.
            if !text.lines().any(|l| l.starts_with("name = ")) {
                continue;
            }
            let load = |sets: &[String]| {
                super::super::load_resolved(
                    text,
                    &source_name(path),
                    std::path::Path::new("."),
                    sets,
                    false,
                )
            };
            let grid = load(&[]).expect("the catalogue loads").scenario.grid;
            let shape = grid.shape().map(|n| n.div_ceil(4).to_string());
            let sets = [
                format!("grid.shape=[{}]", shape.join(",")),
                format!("grid.voxel_um={}", grid.voxel_um * 4.0),
            ];
            if let Err(e) = load(&sets) {
                panic!("{path} with {sets:?}: {e}");
            }
            checked += 1;
        }
        assert!(checked >= 20, "{checked} scenarios checked");
    }

    #[test]
    fn unknown_preset_lists_the_presets() {
        let msg = unknown_preset(std::path::Path::new("fe_fenton_cdx"))
            .expect("unknown")
            .to_string();
        assert!(msg.starts_with("fe_fenton_cdx: no such file"), "{msg}");
        assert!(msg.contains("did you mean `fe_fenton_cdt`?"), "{msg}");
        assert!(msg.contains("`cao2_calcium_overload`"), "{msg}");
        assert!(unknown_preset(std::path::Path::new("fe_fenton_cdt")).is_none());
        assert!(unknown_preset(std::path::Path::new("dir/missing.toml")).is_none());
    }

    /// The compiled-in list and the folder agree: no preset is missing from `ionfield list`.
    #[test]
    fn catalogue_matches_configs_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for dir in [
            "configs/chemistry",
            "configs/therapies",
            "configs/time",
            "configs/tissue",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().to_string();
                if name.ends_with(".toml") {
                    on_disk.push(format!("{dir}/{name}"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        for (p, text) in FILES {
            assert_eq!(*text, std::fs::read_to_string(root.join(p)).unwrap(), "{p}");
        }
    }
}
