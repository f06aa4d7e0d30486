//! Checkpoints: the whole state of a run at a batch boundary, in one file written
//! atomically (`checkpoint/state.ifck` in the output folder), so `ionfield resume DIR`
//! continues bit for bit where the run stopped.
//!
//! File layout (little endian):
//! ```text
//! b"IONFIELD-CHECKPOINT\n"     20 bytes, the magic
//! u64                          length of the JSON header in bytes
//! JSON header                  [`Header`]: versions, backend, loop position, run state,
//!                              the SHA-256 of every input file the run read, and the
//!                              name, size and SHA-256 of every blob
//! [u8; 32]                     SHA-256 of the JSON header bytes (format 2 on)
//! blobs                        raw bytes, one after another in header order
//! ```
//! Every byte is covered by a checksum: a same-length edit of the header (the step, the
//! doses done) is refused like a damaged blob.
//! Blobs hold the engine state (every species field and the reaction integrator's step
//! sizes, in the engine's precision) and any per-voxel arrays of the run (time of death).

use serde::{Deserialize, Serialize};
use std::path::Path;

use super::Position;
use crate::engine::{EngineInfo, EngineState, ReactionStats, StepControl};
use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes` (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// First bytes of every checkpoint file.
pub const MAGIC: &[u8; 20] = b"IONFIELD-CHECKPOINT\n";
/// Version of the layout and header; a checkpoint of another version is refused.
/// Format 2 added the header checksum and the input files.
pub const FORMAT: u32 = 2;
/// Checkpoint path relative to the output folder.
pub const REL_PATH: &str = "checkpoint/state.ifck";

/// One blob: its name (`field/<species>`, `reaction_h_s`, …), size and checksum.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlobRecord {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// An input file the run read (a tissue mask, a vessel CSV) and its SHA-256 when the run
/// started; resume refuses when it changed. A folder (a PNG mask stack) is hashed as the
/// SHA-256 of its files' names and hashes, see [`input_sha256`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputFile {
    /// Absolute path (lexically: `..` kept, symlinks not resolved).
    pub path: String,
    pub sha256: String,
}

/// SHA-256 of an input file, or of a folder: the SHA-256 of `name\0sha256\n` for each of
/// its files, sorted by name (subfolders are not read by any input, so they are skipped).
pub fn input_sha256(path: &Path) -> std::io::Result<String> {
    if path.is_dir() {
        let mut entries: Vec<(String, String)> = Vec::new();
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.is_file() {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                entries.push((name, sha256_hex(&std::fs::read(&p)?)));
            }
        }
        entries.sort();
        let mut text = String::new();
        for (n, h) in entries {
            text.push_str(&format!("{n}\0{h}\n"));
        }
        Ok(sha256_hex(text.as_bytes()))
    } else {
        Ok(sha256_hex(&std::fs::read(path)?))
    }
}

/// Everything in a checkpoint besides the blobs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format: u32,
    pub ionfield_version: String,
    pub git_commit: String,
    /// `gpu` or `cpu`; resume uses the same.
    pub backend: String,
    /// Adapter name as reported by the driver (resume picks the adapter of that name).
    pub adapter_name: String,
    /// Full adapter and driver description, as in the manifest.
    pub adapter: String,
    pub driver: String,
    /// SHA-256 of `config.resolved.toml` in the output folder, which resume loads.
    pub config_sha256: String,
    /// Folder that relative paths of the scenario (masks, vessel CSV) are resolved from,
    /// absolute.
    pub base_dir: String,
    /// Every file the scenario read besides the scenario itself, with its SHA-256.
    pub input_files: Vec<InputFile>,
    /// Where the time loop is.
    pub position: Position,
    /// Model time of the position, s.
    pub time_s: f64,
    /// Engine clock, value size and reaction counters (the arrays are blobs).
    pub engine_clock_s: f64,
    pub engine_value_bytes: usize,
    pub reaction_stats: Option<ReactionStats>,
    /// The adaptive integrator's next step and counters (coupled scheme only).
    #[serde(default)]
    pub step_control: Option<StepControl>,
    /// State of the run's writers and trackers, owned by the caller.
    pub run: serde_json::Value,
    pub blobs: Vec<BlobRecord>,
}

/// A checkpoint in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub header: Header,
    /// (name, bytes), in the order of `header.blobs`.
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}. Fix: {fix}")]
pub struct ReadError {
    pub path: String,
    pub problem: String,
    pub fix: &'static str,
}

const CORRUPT_FIX: &str = "the file is damaged or not a checkpoint; resume from another copy or start the run again (finished outputs stay in the folder)";

const FIELD_PREFIX: &str = "field/";
const REACTION_H: &str = "reaction_h_s";
const REACTION_RESIDUAL: &str = "reaction_residual_mm";

impl Checkpoint {
    /// A checkpoint of `engine` at `position` (`time_s`), with the caller's `run` state and
    /// extra per-voxel arrays `extra` (name, bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: EngineState,
        species_names: &[String],
        adapter_name: &str,
        info: &EngineInfo,
        config_sha256: String,
        base_dir: String,
        input_files: Vec<InputFile>,
        position: Position,
        time_s: f64,
        run: serde_json::Value,
        extra: Vec<(String, Vec<u8>)>,
    ) -> Checkpoint {
        let mut blobs: Vec<(String, Vec<u8>)> = species_names
            .iter()
            .map(|n| format!("{FIELD_PREFIX}{n}"))
            .zip(engine.fields)
            .collect();
        if !engine.reaction_h_s.is_empty() {
            blobs.push((REACTION_H.to_string(), engine.reaction_h_s));
        }
        if !engine.reaction_residual_mm.is_empty() {
            blobs.push((REACTION_RESIDUAL.to_string(), engine.reaction_residual_mm));
        }
        blobs.extend(extra);
        let records = blobs
            .iter()
            .map(|(name, b)| BlobRecord {
                name: name.clone(),
                bytes: b.len() as u64,
                sha256: sha256_hex(b),
            })
            .collect();
        Checkpoint {
            header: Header {
                format: FORMAT,
                ionfield_version: crate::VERSION.to_string(),
                git_commit: crate::GIT_COMMIT.to_string(),
                backend: engine.backend,
                adapter_name: adapter_name.to_string(),
                adapter: info.adapter.clone(),
                driver: info.driver.clone(),
                config_sha256,
                base_dir,
                input_files,
                position,
                time_s,
                engine_clock_s: engine.clock_s,
                engine_value_bytes: engine.value_bytes,
                reaction_stats: engine.reaction_stats,
                step_control: engine.step_control,
                run,
                blobs: records,
            },
            blobs,
        }
    }

    /// The engine state held in the blobs (species in `species_names` order).
    pub fn engine_state(&self, species_names: &[String]) -> Result<EngineState, String> {
        let fields = species_names
            .iter()
            .map(|n| {
                self.blob(&format!("{FIELD_PREFIX}{n}"))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| format!("the checkpoint has no field for species `{n}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EngineState {
            backend: self.header.backend.clone(),
            value_bytes: self.header.engine_value_bytes,
            clock_s: self.header.engine_clock_s,
            fields,
            reaction_h_s: self
                .blob(REACTION_H)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            reaction_residual_mm: self
                .blob(REACTION_RESIDUAL)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            reaction_stats: self.header.reaction_stats,
            step_control: self.header.step_control,
        })
    }

    /// The blob called `name`.
    pub fn blob(&self, name: &str) -> Option<&[u8]> {
        self.blobs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The file's bytes (layout in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the header is plain data");
        let total: usize = self.blobs.iter().map(|(_, b)| b.len()).sum();
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + header.len() + 32 + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&Sha256::digest(&header));
        for (_, b) in &self.blobs {
            out.extend_from_slice(b);
        }
        out
    }

    /// Parses and verifies a checkpoint file (magic, format, the header's SHA-256, every
    /// blob's size and SHA-256); `path` names it in errors.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint, ReadError> {
        let err = |problem: String, fix: &'static str| ReadError {
            path: path.display().to_string(),
            problem,
            fix,
        };
        if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(err(
                "not an ionfield checkpoint (wrong magic bytes)".into(),
                CORRUPT_FIX,
            ));
        }
        let len_at = MAGIC.len();
        let header_len =
            u64::from_le_bytes(bytes[len_at..len_at + 8].try_into().expect("8 bytes")) as usize;
        let body = len_at + 8;
        let header_bytes = bytes
            .get(body..body.saturating_add(header_len))
            .ok_or_else(|| err("the header is cut short".into(), CORRUPT_FIX))?;
        // The header's checksum follows it (format 2 on). When it does not match, the
        // format says whether this is an older layout or an edited or damaged header.
        let sum_at = body + header_len;
        let sum_ok = bytes
            .get(sum_at..sum_at.saturating_add(32))
            .is_some_and(|sum| Sha256::digest(header_bytes).as_slice() == sum);
        #[derive(Deserialize)]
        struct Version {
            format: u32,
            #[serde(default)]
            ionfield_version: String,
        }
        let version = serde_json::from_slice::<Version>(header_bytes).ok();
        if let Some(v) = version.as_ref().filter(|v| v.format != FORMAT) {
            return Err(err(
                format!(
                    "checkpoint format {} (written by ionfield {}), this ionfield reads format {FORMAT} only{}",
                    v.format,
                    if v.ionfield_version.is_empty() { "?" } else { &v.ionfield_version },
                    if v.format < FORMAT {
                        " (format 2 added a checksum of the header and of the run's input files)"
                    } else {
                        ""
                    }
                ),
                "resume with the ionfield version that wrote it, or start the run again",
            ));
        }
        if !sum_ok {
            return Err(err(
                "the header fails its SHA-256 check (it was edited or damaged)".into(),
                CORRUPT_FIX,
            ));
        }
        let header: Header = serde_json::from_slice(header_bytes)
            .map_err(|e| err(format!("the header cannot be read ({e})"), CORRUPT_FIX))?;
        let mut at = sum_at + 32;
        let mut blobs = Vec::with_capacity(header.blobs.len());
        for rec in &header.blobs {
            let end = at.saturating_add(rec.bytes as usize);
            let b = bytes.get(at..end).ok_or_else(|| {
                err(
                    format!("blob `{}` is cut short (file truncated)", rec.name),
                    CORRUPT_FIX,
                )
            })?;
            if sha256_hex(b) != rec.sha256 {
                return Err(err(
                    format!("blob `{}` fails its SHA-256 check", rec.name),
                    CORRUPT_FIX,
                ));
            }
            blobs.push((rec.name.clone(), b.to_vec()));
            at = end;
        }
        if at != bytes.len() {
            return Err(err(
                format!("{} unexpected bytes after the last blob", bytes.len() - at),
                CORRUPT_FIX,
            ));
        }
        Ok(Checkpoint { header, blobs })
    }
}

/// f32 values as little-endian bytes (for per-voxel arrays such as the time of death).
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice::<f32, u8>(values).to_vec()
}

/// The inverse of [`f32_bytes`] (any alignment).
pub fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(bytemuck::pod_read_unaligned::<f32>)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Checkpoint {
        let engine = EngineState {
            backend: "cpu".into(),
            value_bytes: 8,
            clock_s: 12.5,
            fields: vec![
                bytemuck::cast_slice(&[1.0f64, 2.0]).to_vec(),
                bytemuck::cast_slice(&[3.0f64, f64::MIN_POSITIVE]).to_vec(),
            ],
            reaction_h_s: bytemuck::cast_slice(&[0.1f64, 0.2]).to_vec(),
            reaction_residual_mm: Vec::new(),
            reaction_stats: Some(ReactionStats {
                calls: 3,
                substeps: 9,
                max_substeps: 4,
            }),
            step_control: Some(StepControl {
                h_s: 7.5,
                h_cap_s: 30.0,
                steps_under_cap: 4,
                stats: Default::default(),
            }),
        };
        Checkpoint::new(
            engine,
            &["A".into(), "B".into()],
            "llvmpipe",
            &EngineInfo {
                backend: "cpu".into(),
                adapter: String::new(),
                driver: String::new(),
            },
            "abc".into(),
            "/tmp".into(),
            vec![InputFile {
                path: "/tmp/mask.npy".into(),
                sha256: "00".into(),
            }],
            Position {
                stops_done: 2,
                step: 25,
                doses_done: 1,
                time_s: 12.5,
            },
            12.5,
            serde_json::json!({"rows": ["x"]}),
            vec![("time_of_death".into(), f32_bytes(&[f32::NAN, 3.0]))],
        )
    }

    #[test]
    fn round_trip_is_exact() {
        let c = example();
        let back = Checkpoint::decode(&c.encode(), Path::new("c")).unwrap();
        assert_eq!(back.header, c.header);
        assert_eq!(back.blobs, c.blobs);
        let names = ["A".to_string(), "B".to_string()];
        let state = back.engine_state(&names).unwrap();
        assert_eq!(state.fields[1], c.blobs[1].1);
        assert_eq!(state.reaction_h_s.len(), 16);
        let tod = f32_values(back.blob("time_of_death").unwrap());
        assert!(tod[0].is_nan() && tod[1] == 3.0);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = example().encode();
        let p = Path::new("ck");
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let e = Checkpoint::decode(&flipped, p).unwrap_err();
        assert!(e.problem.contains("SHA-256"), "{e}");
        let e = Checkpoint::decode(&bytes[..bytes.len() - 3], p).unwrap_err();
        assert!(e.problem.contains("cut short"), "{e}");
        let e = Checkpoint::decode(b"hello", p).unwrap_err();
        assert!(e.problem.contains("magic"), "{e}");
        // A same-length edit of the header (step 25 → 15).
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let at = text.find("\"step\":25").expect("the step in the header");
        let mut edited = bytes.clone();
        edited[at + 8] = b'1';
        let e = Checkpoint::decode(&edited, p).unwrap_err();
        assert!(e.problem.contains("header fails its SHA-256"), "{e}");
        let names = ["A".to_string(), "C".to_string()];
        let e = example().engine_state(&names).unwrap_err();
        assert!(e.contains("`C`"), "{e}");
    }

    #[test]
    fn format_1_is_refused_with_the_reason() {
        // A format-1 file: the header straight after its length, no checksum.
        let mut h = serde_json::to_value(&example().header).unwrap();
        h["format"] = 1.into();
        let header = serde_json::to_vec(&h).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        let e = Checkpoint::decode(&bytes, Path::new("old.ifck")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("format 1") && msg.contains("reads format 2") && msg.contains("old.ifck"),
            "{msg}"
        );
    }

    #[test]
    fn a_folder_is_hashed_by_its_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"1").unwrap();
        let before = input_sha256(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.png"), b"2").unwrap();
        assert_ne!(input_sha256(dir.path()).unwrap(), before);
        assert!(input_sha256(&dir.path().join("none")).is_err());
    }
}
