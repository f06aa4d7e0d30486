//! `[tissues.<name>]`: regions or mask files → [`Tissue`]s (id 0 is the background
//! `normal`).

use std::path::Path;

use serde::Deserialize;

use super::checks::{is_identifier, join};
use super::error::{Error, ErrorKind};
use super::mask;
use super::raw::NamedMap;
use super::region::{self, RegionKeys};
use super::scenario::{Grid, Tissue, MAX_TISSUES};

/// `tissues.<name>`: a region (the keys of [`RegionKeys`]) or `mask`, a file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTissue {
    pub shape: Option<String>,
    pub centre_um: Option<Vec<f64>>,
    pub radius_um: Option<f64>,
    pub min_um: Option<Vec<f64>>,
    pub max_um: Option<Vec<f64>>,
    pub start_um: Option<Vec<f64>>,
    pub end_um: Option<Vec<f64>>,
    pub sigma_um: Option<f64>,
    /// A `.npy` array (nz, ny, nx) or a folder of PNG slices, relative to the scenario file.
    pub mask: Option<String>,
}

impl RawTissue {
    pub fn keys<'a>(&'a self, shape: &'a str) -> RegionKeys<'a> {
        RegionKeys {
            shape,
            centre_um: self.centre_um.as_deref(),
            radius_um: self.radius_um,
            min_um: self.min_um.as_deref(),
            max_um: self.max_um.as_deref(),
            start_um: self.start_um.as_deref(),
            end_um: self.end_um.as_deref(),
            sigma_um: self.sigma_um,
        }
    }
    /// Whether any geometric key is present.
    pub fn has_region_keys(&self) -> bool {
        self.centre_um.is_some()
            || self.radius_um.is_some()
            || self.min_um.is_some()
            || self.max_um.is_some()
            || self.start_um.is_some()
            || self.end_um.is_some()
            || self.sigma_um.is_some()
    }
}

/// `[tissues]`, after the background `normal` (id 0).
pub(super) fn validate(
    map: Option<&NamedMap<RawTissue>>,
    grid: &Grid,
    base_dir: &Path,
) -> Result<Vec<Tissue>, Error> {
    let mut out = vec![Tissue {
        name: "normal".to_string(),
        region: None,
        mask: None,
    }];
    let Some(map) = map else {
        return Ok(out);
    };
    if map.0.len() + 1 > MAX_TISSUES {
        return Err(Error::invalid(
            "tissues",
            format!(
                "at most {} tissues besides `normal` are supported",
                MAX_TISSUES - 1
            ),
        )
        .found(map.0.len())
        .fix("merge or remove tissue types"));
    }
    for (name, t) in &map.0 {
        let path = format!("tissues.{name}");
        if name == "normal" {
            return Err(Error::invalid(&path, "`normal` is reserved for the background (tissue id 0)")
                .fix("rename the tissue, e.g. [tissues.stroma]; every voxel no region claims is already `normal`"));
        }
        if !is_identifier(name, true) {
            return Err(
                Error::invalid(&path, "tissue names must match [A-Za-z][A-Za-z0-9_-]*")
                    .found(format!("{name:?}"))
                    .fix("use a name such as `tumour` or `necrotic_core`"),
            );
        }
        let tissue = match (&t.mask, &t.shape) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    join(&path, "mask"),
                    "a tissue takes either a geometric region (`shape` …) or a `mask` file, not both",
                )
                .fix("remove `mask`, or remove `shape` and its keys"))
            }
            (Some(file), None) => {
                if t.has_region_keys() {
                    return Err(Error::invalid(
                        join(&path, "mask"),
                        "a tissue with a `mask` takes no region keys (centre_um, radius_um, min_um, …)",
                    )
                    .fix("remove the region keys, or remove `mask` and add `shape`"));
                }
                let field = join(&path, "mask");
                let mask = mask::read(&base_dir.join(file), grid)
                    .map_err(|(problem, fix)| Error::invalid(&field, problem).found(format!("{file:?}")).fix(fix))?;
                Tissue {
                    name: name.clone(),
                    region: None,
                    mask: Some(mask),
                }
            }
            (None, Some(shape)) => Tissue {
                name: name.clone(),
                region: Some(region::validate(t.keys(shape), &path, grid)?),
                mask: None,
            },
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::MissingKey,
                    join(&path, "shape"),
                    "a tissue needs a region (`shape` and its keys) or a `mask` file",
                )
                .fix("add e.g. shape = \"sphere\", centre_um = [..], radius_um = 100.0, or mask = \"tumour.npy\""))
            }
        };
        out.push(tissue);
    }
    Ok(out)
}
