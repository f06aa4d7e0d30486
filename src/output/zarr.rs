//! The OME-Zarr store of a run: `fields.ome.zarr/`, every 3D field at every output time
//! in one chunked store that napari (napari-ome-zarr), `zarr`/`ome-zarr-py` and Fiji open.
//!
//! Layout (OME-NGFF 0.5 on Zarr v3):
//!
//! ```text
//! fields.ome.zarr/zarr.json          group: attributes.ome (multiscales, omero channels),
//!                                    attributes.ionfield (channel names and units, exact times)
//! fields.ome.zarr/0/zarr.json        array (t, c, z, y, x), float32, fill NaN, gzip level 1
//! fields.ome.zarr/0/c/T/C/K/0/0      chunk: output time T, field C, z block K (whole y, x)
//! fields.ome.zarr/labels/…           tissue and vessels label images (uint8, (z, y, x): the
//!                                    same at every time)
//! ```
//!
//! Axes: t in s, c the fields (units per channel in `attributes.ionfield.channels` and the
//! channel labels, e.g. `O2 [mM]`), z, y, x in µm. The scale is (output interval, 1, voxel,
//! voxel, voxel) and the translation puts index 0 at the first voxel's centre (½ voxel),
//! as the Python package's coordinates. The exact output times are in
//! `attributes.ionfield.times_s` (the scale's t step is the first interval). `time_of_death`
//! is a channel written at the last time only (NaN at the others, the fill value).
//!
//! The zarrs crate writes the format (metadata documents, chunk keys, codecs) into an
//! in-memory store; ionfield then writes each key to disk atomically and lists it in the
//! manifest with its size and SHA-256, as every other file of a run. The store grows as the
//! run goes: each output time adds chunks and rewrites the two `zarr.json` documents, so an
//! interrupted run's store holds exactly the times it finished.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use zarrs::array::codec::GzipCodec;
use zarrs::array::{data_type, ArrayBuilder};
use zarrs::group::GroupBuilder;
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{ListableStorageTraits, ReadableStorageTraits};

use crate::grid::Grid;

/// The store's folder in the run folder.
pub const STORE: &str = "fields.ome.zarr";

/// Largest chunk, in f32 values (16 MiB): a field of a large grid is cut into z blocks.
const MAX_CHUNK_VALUES: usize = 1 << 22;

/// gzip level of the chunks: level 1 compresses a run's smooth fields about as well as 9
/// at a fraction of the time.
const GZIP_LEVEL: u32 = 1;

/// An error of the Zarr encoder (a bug, not bad input: every shape and key is ours).
#[derive(Debug, thiserror::Error)]
#[error("OME-Zarr encoding failed: {0}")]
pub struct ZarrError(String);

fn err(e: impl std::fmt::Display) -> ZarrError {
    ZarrError(e.to_string())
}

/// One field (a channel of the store).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    pub name: String,
    pub unit: String,
    /// Smallest and largest finite value written so far (the viewers' display window).
    pub min: f64,
    pub max: f64,
}

/// What the store holds so far: kept in checkpoints so a resumed run extends the same store.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ZarrState {
    pub channels: Vec<Channel>,
    /// Output times written, s, in order.
    pub times_s: Vec<f64>,
    /// Tissue names of the `tissue` label values (0, 1, …), once the labels are written.
    pub tissues: Vec<String>,
    /// Whether the label images are written (once per run: a resumed run keeps them).
    #[serde(default)]
    pub labels_written: bool,
}

/// Chunk shape of the image: one time, one field, a block of whole z slices.
pub(crate) fn chunk_shape(grid: &Grid) -> Vec<u64> {
    let per_slice = grid.nx * grid.ny;
    let nz_chunk = (MAX_CHUNK_VALUES / per_slice).clamp(1, grid.nz);
    vec![1, 1, nz_chunk as u64, grid.ny as u64, grid.nx as u64]
}

/// Files of a store with `field_times` fields × output times (each in
/// [`chunk_shape`]'s z blocks), the two growing documents and the two label images.
pub(crate) fn n_files(grid: &Grid, field_times: u64) -> u64 {
    let blocks = grid.nz.div_ceil(chunk_shape(grid)[2] as usize) as u64;
    // zarr.json, 0/zarr.json; labels/zarr.json and per label: group, array, chunk
    field_times * blocks + 2 + 1 + 2 * 3
}

/// Group attributes holding the NGFF metadata `ome` (its `version` added).
fn ome_attributes(mut ome: Value) -> Map<String, Value> {
    ome["version"] = json!("0.5");
    let mut attrs = Map::new();
    attrs.insert("ome".into(), ome);
    attrs
}

/// (key relative to the store, bytes) of every document and chunk in `store`.
fn drain(store: &MemoryStore) -> Result<Vec<(String, Vec<u8>)>, ZarrError> {
    let mut out = Vec::new();
    for key in store.list().map_err(err)? {
        let bytes = store
            .get(&key)
            .map_err(err)?
            .ok_or_else(|| err(format!("key {} vanished", key.as_str())))?;
        out.push((key.as_str().to_string(), bytes.to_vec()));
    }
    Ok(out)
}

impl ZarrState {
    /// Index of the channel `name`, added (with `unit`) if new.
    fn channel(&mut self, name: &str, unit: &str) -> usize {
        match self.channels.iter().position(|c| c.name == name) {
            Some(c) => c,
            None => {
                self.channels.push(Channel {
                    name: name.to_string(),
                    unit: unit.to_string(),
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                });
                self.channels.len() - 1
            }
        }
    }

    /// Index of output time `time_s`, added if new (times arrive in order).
    fn time(&mut self, time_s: f64) -> usize {
        match self.times_s.iter().position(|&t| t == time_s) {
            Some(t) => t,
            None => {
                self.times_s.push(time_s);
                self.times_s.len() - 1
            }
        }
    }

    fn image_shape(&self, grid: &Grid) -> Vec<u64> {
        vec![
            self.times_s.len().max(1) as u64,
            self.channels.len().max(1) as u64,
            grid.nz as u64,
            grid.ny as u64,
            grid.nx as u64,
        ]
    }

    fn image_builder(&self, grid: &Grid) -> Result<ArrayBuilder, ZarrError> {
        let mut b = ArrayBuilder::new(
            self.image_shape(grid),
            chunk_shape(grid),
            data_type::float32(),
            f32::NAN,
        );
        b.bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(GZIP_LEVEL).map_err(err)?)])
            .dimension_names(Some(["t", "c", "z", "y", "x"]));
        Ok(b)
    }

    /// The chunks of `field` (len = grid voxels, x fastest) as field `name` [`unit`] at
    /// `time_s`: (key relative to the store, encoded bytes).
    pub fn field_chunks(
        &mut self,
        grid: &Grid,
        name: &str,
        unit: &str,
        field: &[f32],
        time_s: f64,
    ) -> Result<Vec<(String, Vec<u8>)>, ZarrError> {
        let c = self.channel(name, unit);
        let t = self.time(time_s);
        for &v in field.iter().filter(|v| v.is_finite()) {
            let ch = &mut self.channels[c];
            ch.min = ch.min.min(v as f64);
            ch.max = ch.max.max(v as f64);
        }
        let store = Arc::new(MemoryStore::new());
        let array = self
            .image_builder(grid)?
            .build(store.clone(), "/0")
            .map_err(err)?;
        let nz_chunk = chunk_shape(grid)[2] as usize;
        let per_slice = grid.nx * grid.ny;
        // Every chunk is written, also one that is all NaN (the fill value): the store's
        // files do not depend on the values.
        let options = zarrs::array::CodecOptions::default().with_store_empty_chunks(true);
        for (k, block) in field.chunks(nz_chunk * per_slice).enumerate() {
            let mut data = block.to_vec();
            // The last block of z slices is padded to the chunk shape.
            data.resize(nz_chunk * per_slice, f32::NAN);
            array
                .store_chunk_opt(
                    &[t as u64, c as u64, k as u64, 0, 0],
                    data.as_slice(),
                    &options,
                )
                .map_err(err)?;
        }
        drain(&store)
    }

    /// The label images `tissue` (tissue index per voxel, names `tissues`) and `vessels`
    /// (1 inside a vessel): every document and chunk under `labels/`.
    pub fn label_files(
        &mut self,
        grid: &Grid,
        tissue: &[u8],
        vessels: &[u8],
        tissues: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, ZarrError> {
        self.tissues = tissues.to_vec();
        self.labels_written = true;
        let store = Arc::new(MemoryStore::new());
        let shape = vec![grid.nz as u64, grid.ny as u64, grid.nx as u64];
        GroupBuilder::new()
            .attributes(ome_attributes(json!({"labels": ["tissue", "vessels"]})))
            .build(store.clone(), "/labels")
            .map_err(err)?
            .store_metadata()
            .map_err(err)?;
        let names: Vec<String> = tissues.to_vec();
        let vessel_names = vec!["no vessel".to_string(), "vessel".to_string()];
        for (name, values, value_names) in [
            ("tissue", tissue, &names),
            ("vessels", vessels, &vessel_names),
        ] {
            let path = format!("/labels/{name}");
            let properties: Vec<Value> = value_names
                .iter()
                .enumerate()
                .map(|(v, n)| json!({"label-value": v, "name": n}))
                .collect();
            let attrs = ome_attributes(json!({
                "multiscales": [self.multiscales(grid, name, true)],
                "image-label": {
                    "version": "0.5",
                    "properties": properties,
                    "source": {"image": "../../"}
                }
            }));
            GroupBuilder::new()
                .attributes(attrs)
                .build(store.clone(), &path)
                .map_err(err)?
                .store_metadata()
                .map_err(err)?;
            let mut b = ArrayBuilder::new(shape.clone(), shape.clone(), data_type::uint8(), 0u8);
            b.bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(GZIP_LEVEL).map_err(err)?)])
                .dimension_names(Some(["z", "y", "x"]));
            let array = b.build(store.clone(), &format!("{path}/0")).map_err(err)?;
            array.store_metadata().map_err(err)?;
            let options = zarrs::array::CodecOptions::default().with_store_empty_chunks(true);
            array
                .store_chunk_opt(&[0, 0, 0], values, &options)
                .map_err(err)?;
        }
        drain(&store)
    }

    /// One NGFF multiscales entry (a single resolution, dataset `0`) named `name`.
    /// `space_only`: the axes z, y, x alone (the label images, which hold for every time and
    /// field).
    fn multiscales(&self, grid: &Grid, name: &str, space_only: bool) -> Value {
        let dx = grid.voxel_um;
        let half = dx / 2.0;
        let space = |axis: &str| json!({"name": axis, "type": "space", "unit": "micrometer"});
        let mut axes = vec![space("z"), space("y"), space("x")];
        let mut scale = vec![dx, dx, dx];
        let mut translation = vec![half, half, half];
        if !space_only {
            let dt = match self.times_s.as_slice() {
                [a, b, ..] => b - a,
                _ => 1.0,
            };
            let t0 = self.times_s.first().copied().unwrap_or(0.0);
            axes.splice(
                0..0,
                [
                    json!({"name": "t", "type": "time", "unit": "second"}),
                    json!({"name": "c", "type": "channel"}),
                ],
            );
            scale.splice(0..0, [dt, 1.0]);
            translation.splice(0..0, [t0, 0.0]);
        }
        json!({
            "name": name,
            "axes": axes,
            "datasets": [{
                "path": "0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": scale},
                    {"type": "translation", "translation": translation}
                ]
            }]
        })
    }

    /// The two documents that change as the store grows: the root group (multiscales,
    /// omero channels, ionfield's channel units and exact times) and the image array's
    /// `zarr.json` (its shape).
    pub fn metadata_files(
        &self,
        grid: &Grid,
        scenario_name: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ZarrError> {
        let store = Arc::new(MemoryStore::new());
        let channels: Vec<Value> = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (lo, hi) = if c.min <= c.max {
                    (c.min, c.max)
                } else {
                    (0.0, 1.0)
                };
                json!({
                    "label": format!("{} [{}]", c.name, c.unit),
                    "color": "FFFFFF",
                    // One field shown at a time (the first); the viewer's layer list
                    // switches between them.
                    "active": i == 0,
                    "window": {"min": lo, "max": hi, "start": lo, "end": hi}
                })
            })
            .collect();
        let fields: Vec<Value> = self
            .channels
            .iter()
            .map(|c| json!({"name": c.name, "unit": c.unit}))
            .collect();
        let mut attrs = ome_attributes(json!({
            "multiscales": [self.multiscales(grid, scenario_name, false)],
            "omero": {"channels": channels, "rdefs": {"model": "greyscale"}}
        }));
        attrs.insert(
            "ionfield".into(),
            json!({
                "channels": fields,
                "times_s": self.times_s,
                "tissues": self.tissues,
                "axis_order": "t, c, z, y, x; x fastest; voxel centres at (index + 0.5) * voxel_um",
                "voxel_um": grid.voxel_um,
            }),
        );
        GroupBuilder::new()
            .attributes(attrs)
            .build(store.clone(), "/")
            .map_err(err)?
            .store_metadata()
            .map_err(err)?;
        self.image_builder(grid)?
            .build(store.clone(), "/0")
            .map_err(err)?
            .store_metadata()
            .map_err(err)?;
        drain(&store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            nx: 5,
            ny: 4,
            nz: 3,
            voxel_um: 10.0,
        }
    }

    #[test]
    fn chunks_cut_large_grids_into_z_blocks() {
        assert_eq!(chunk_shape(&grid()), vec![1, 1, 3, 4, 5]);
        let big = Grid {
            nx: 1024,
            ny: 1024,
            nz: 64,
            voxel_um: 1.0,
        };
        assert_eq!(chunk_shape(&big), vec![1, 1, 4, 1024, 1024]);
    }

    #[test]
    fn a_field_is_one_gzip_chunk_per_z_block_and_the_metadata_grows() {
        let g = grid();
        let mut s = ZarrState::default();
        let f: Vec<f32> = (0..60).map(|i| i as f32).collect();
        let a = s.field_chunks(&g, "O2", "mM", &f, 0.0).unwrap();
        let b = s.field_chunks(&g, "viab", "1", &f, 0.0).unwrap();
        let c = s.field_chunks(&g, "O2", "mM", &f, 60.0).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, "0/c/0/0/0/0/0");
        assert_eq!(b[0].0, "0/c/0/1/0/0/0");
        assert_eq!(c[0].0, "0/c/1/0/0/0/0");
        // gzip: the magic bytes
        assert_eq!(&a[0].1[..2], &[0x1f, 0x8b]);
        assert_eq!(s.times_s, vec![0.0, 60.0]);
        assert_eq!(s.channels[0].max, 59.0);
        let meta = s.metadata_files(&g, "test").unwrap();
        let keys: Vec<&str> = meta.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["0/zarr.json", "zarr.json"]);
        let image: Value = serde_json::from_slice(&meta[0].1).unwrap();
        assert_eq!(image["shape"], json!([2, 2, 3, 4, 5]));
        assert_eq!(image["fill_value"], json!("NaN"));
        let root: Value = serde_json::from_slice(&meta[1].1).unwrap();
        let ms = &root["attributes"]["ome"]["multiscales"][0];
        assert_eq!(
            ms["datasets"][0]["coordinateTransformations"][0]["scale"],
            json!([60.0, 1.0, 10.0, 10.0, 10.0])
        );
        assert_eq!(
            root["attributes"]["omero"]["channels"][1]["label"],
            Value::Null,
            "omero sits inside ome in NGFF 0.5"
        );
        assert_eq!(
            root["attributes"]["ome"]["omero"]["channels"][1]["label"],
            json!("viab [1]")
        );
    }
}
