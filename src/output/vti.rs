//! VTK XML ImageData (`.vti`) of every field of one output time, and the ParaView
//! collection `series.pvd` that turns the files into a time series.
//!
//! Format: VTK's XML file formats (<https://docs.vtk.org/en/latest/design_documents/VTKFileFormats.html>),
//! `ImageData` with the arrays in one `AppendedData` block, `encoding="raw"`,
//! `header_type="UInt64"`, little endian: after the `_` marker each array is an 8-byte
//! byte count followed by its Float32 values; a `DataArray`'s `offset` counts from the
//! byte after `_`.
//!
//! Geometry: one voxel is one VTK *cell*. `WholeExtent = Extent = "0 nx 0 ny 0 nz"` (point
//! indices, so nx·ny·nz cells), `Origin = "0 0 0"`, `Spacing` = voxel edge in µm on all
//! three axes, so ParaView's coordinates are the domain's µm (cell (i, j, k) spans
//! [i·h, (i+1)·h] × … with h = `grid.voxel_um`). VTK orders cells x fastest, then y,
//! then z, which is the storage order of the fields (index = i + nx·(j + ny·k)), so the
//! values are written as they are.
//!
//! Arrays: one `Float32` `CellData` array per written field, named `<field>_<unit>` with
//! the unit made an identifier ([`array_name`]): `O2_mM`, `H2O2_mM`, `R1_per_s`, `T2w_au`;
//! dimensionless fields (unit `1`, e.g. `viab`) and `pH` keep their plain name. Names
//! are identifiers so ParaView's Calculator and Python filters can use them unquoted. The
//! first array is the active scalar. A `FieldData` array `TimeValue` (Float64, s) holds
//! the output time, which ParaView also uses when a single `.vti` is opened.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::Grid;

/// One `<DataSet>` of `series.pvd`: an output time (s) and its `.vti`, relative to the
/// folder of the `.pvd`. Kept by the [`super::RunWriter`] (and by checkpoints) so the
/// collection can be rewritten at every output time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PvdEntry {
    pub time_s: f64,
    pub file: String,
}

/// One field of a `.vti`: its array name (see [`array_name`]) and values (x fastest).
pub struct VtiArray<'a> {
    pub name: String,
    pub values: &'a [f32],
}

/// `[A-Za-z0-9_]` only; anything else becomes `_`, runs of `_` collapse, no `_` at the
/// ends.
fn identifier(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The `CellData` array name of a field: `<field>_<unit>` with the unit as an identifier
/// (`µ` → `u`, a leading `1/` → `per_`, `/` → `_per_`, `a.u.` → `au`, other symbols
/// `_`). A dimensionless unit (`1` or empty), or a unit equal to the field name (`pH`),
/// adds nothing: `viab`, `pH`.
pub fn array_name(field: &str, unit: &str) -> String {
    let field_id = match identifier(field) {
        f if f.is_empty() => "field".to_string(),
        f => f,
    };
    let unit = unit.trim();
    if unit.is_empty() || unit == "1" || unit == field {
        return field_id;
    }
    let mut u = unit.replace(['µ', 'μ'], "u").replace('.', "");
    if let Some(rest) = u.strip_prefix("1/") {
        u = format!("per_{rest}");
    }
    let u = identifier(&u.replace('/', "_per_"));
    if u.is_empty() {
        field_id
    } else {
        format!("{field_id}_{u}")
    }
}

/// `s` escaped for an XML attribute value.
fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Encodes one output time as a `.vti`: `arrays` as Float32 cell data on the grid,
/// `time_s` as `TimeValue`. Panics if an array's length is not `grid.n_voxels()`;
/// [`super::RunWriter`] checks every field before calling.
pub fn encode_image(grid: &Grid, time_s: f64, arrays: &[VtiArray]) -> Vec<u8> {
    let n = grid.n_voxels();
    for a in arrays {
        assert_eq!(
            a.values.len(),
            n,
            "array {} does not match the grid",
            a.name
        );
    }
    let extent = format!("0 {} 0 {} 0 {}", grid.nx, grid.ny, grid.nz);
    let h = grid.voxel_um;
    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\"?>\n");
    xml.push_str(
        "<VTKFile type=\"ImageData\" version=\"1.0\" byte_order=\"LittleEndian\" header_type=\"UInt64\">\n",
    );
    let _ = writeln!(
        xml,
        "  <ImageData WholeExtent=\"{extent}\" Origin=\"0 0 0\" Spacing=\"{h} {h} {h}\">"
    );
    xml.push_str("    <FieldData>\n");
    let _ = writeln!(
        xml,
        "      <DataArray type=\"Float64\" Name=\"TimeValue\" NumberOfTuples=\"1\" format=\"ascii\">{time_s}</DataArray>"
    );
    xml.push_str("    </FieldData>\n");
    let _ = writeln!(xml, "    <Piece Extent=\"{extent}\">");
    xml.push_str("      <PointData>\n      </PointData>\n");
    match arrays.first() {
        Some(a) => {
            let _ = writeln!(xml, "      <CellData Scalars=\"{}\">", xml_attr(&a.name));
        }
        None => xml.push_str("      <CellData>\n"),
    }
    let block = 8 + 4 * n as u64;
    for (i, a) in arrays.iter().enumerate() {
        let _ = writeln!(
            xml,
            "        <DataArray type=\"Float32\" Name=\"{}\" NumberOfComponents=\"1\" format=\"appended\" offset=\"{}\"/>",
            xml_attr(&a.name),
            i as u64 * block
        );
    }
    xml.push_str("      </CellData>\n    </Piece>\n  </ImageData>\n");
    xml.push_str("  <AppendedData encoding=\"raw\">\n   _");
    let mut out = xml.into_bytes();
    out.reserve(arrays.len() * block as usize + 64);
    for a in arrays {
        out.extend_from_slice(&(4 * n as u64).to_le_bytes());
        for v in a.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(b"\n  </AppendedData>\n</VTKFile>\n");
    out
}

/// Encodes `series.pvd`: one `<DataSet timestep="<time_s>" file="...">` per entry, in the
/// order given (output times increase).
pub fn encode_pvd(entries: &[PvdEntry]) -> Vec<u8> {
    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\"?>\n");
    xml.push_str("<VTKFile type=\"Collection\" version=\"0.1\" byte_order=\"LittleEndian\">\n");
    xml.push_str("  <Collection>\n");
    for e in entries {
        let _ = writeln!(
            xml,
            "    <DataSet timestep=\"{}\" group=\"\" part=\"0\" file=\"{}\"/>",
            e.time_s,
            xml_attr(&e.file)
        );
    }
    xml.push_str("  </Collection>\n</VTKFile>\n");
    xml.into_bytes()
}

/// Adds (or, for a time already listed, replaces) the `.vti` of `time_s`, keeping the
/// entries sorted by time.
pub fn add_entry(entries: &mut Vec<PvdEntry>, time_s: f64, file: String) {
    entries.retain(|e| e.file != file && e.time_s != time_s);
    let at = entries.partition_point(|e| e.time_s < time_s);
    entries.insert(at, PvdEntry { time_s, file });
}

impl super::RunWriter {
    /// Writes `vti/fields_<time>.vti` with every field of one output time
    /// (`names_units[i]` = (field, unit) of `fields[i]`) and rewrites `vti/series.pvd`;
    /// both are recorded in the manifest (kinds `vti`, `pvd`).
    pub(super) fn write_vti(
        &mut self,
        time_s: f64,
        step: u64,
        names_units: &[(String, String)],
        fields: &[Vec<f32>],
    ) -> Result<(), super::Error> {
        let grid = self.scenario.grid;
        let tag = super::time_tag(time_s, self.time_decimals);
        let mut arrays: Vec<VtiArray> = Vec::with_capacity(fields.len());
        let mut described = Vec::with_capacity(fields.len());
        for ((field, unit), values) in names_units.iter().zip(fields) {
            let mut name = array_name(field, unit);
            // Two fields whose names only differ in symbols would share an array name.
            if arrays.iter().any(|a| a.name == name) {
                name = format!("{name}_{}", arrays.len());
            }
            described.push(format!("{name} = {field} in {unit}"));
            arrays.push(VtiArray { name, values });
        }
        let bytes = encode_image(&grid, time_s, &arrays);
        let file = format!("fields_{tag}.vti");
        let rel = format!("vti/{file}");
        let join = |f: fn(&(String, String)) -> &str| {
            names_units.iter().map(f).collect::<Vec<_>>().join(",")
        };
        let record = |kind: &str, field: String, unit: String, mapping: String| super::FileRecord {
            mapping: Some(mapping),
            ..super::FileRecord::of_field(kind, &field, &unit, time_s, step)
        };
        let vti_record = record(
            "vti",
            join(|p| p.0.as_str()),
            join(|p| p.1.as_str()),
            format!(
                "VTK ImageData, one cell per voxel (x fastest), origin 0, spacing {} µm; Float32 CellData: {}",
                grid.voxel_um,
                described.join("; ")
            ),
        );
        self.files.retain(|f| f.path != rel);
        super::write_file(&self.out_dir, &mut self.files, rel, &bytes, vti_record)?;

        add_entry(&mut self.vti_series, time_s, file);
        let rel = "vti/series.pvd".to_string();
        let pvd_record = record(
            "pvd",
            String::new(),
            "s".to_string(),
            "ParaView collection of the .vti files, DataSet timestep = output time in s"
                .to_string(),
        );
        self.files.retain(|f| f.path != rel);
        let bytes = encode_pvd(&self.vti_series);
        super::write_file(&self.out_dir, &mut self.files, rel, &bytes, pvd_record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            nx: 3,
            ny: 2,
            nz: 4,
            voxel_um: 2.5,
        }
    }

    /// The XML head (everything before the `_` marker of the appended data) as text.
    fn head(bytes: &[u8]) -> &str {
        let marker = b"<AppendedData encoding=\"raw\">\n   _";
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("marker")
            + marker.len()
            - 1;
        std::str::from_utf8(&bytes[..at]).expect("ASCII head")
    }

    #[test]
    fn array_names_carry_the_unit_as_an_identifier() {
        assert_eq!(array_name("O2", "mM"), "O2_mM");
        assert_eq!(array_name("pH", "pH"), "pH");
        assert_eq!(array_name("viab", "1"), "viab");
        assert_eq!(array_name("R1", "1/s"), "R1_per_s");
        assert_eq!(array_name("T2w", "a.u."), "T2w_au");
        assert_eq!(array_name("time_of_death", "s"), "time_of_death_s");
        assert_eq!(array_name("Cu", "µM"), "Cu_uM");
        assert_eq!(array_name("k", "1/(mM*s)"), "k_per_mM_s");
        assert_eq!(array_name("rate", "mM/s"), "rate_mM_per_s");
    }

    #[test]
    fn vti_header_extent_spacing_and_offsets() {
        let g = grid();
        let a: Vec<f32> = (0..g.n_voxels()).map(|i| i as f32).collect();
        let b: Vec<f32> = a.iter().map(|v| -v).collect();
        let bytes = encode_image(
            &g,
            120.0,
            &[
                VtiArray {
                    name: "O2_mM".into(),
                    values: &a,
                },
                VtiArray {
                    name: "pH".into(),
                    values: &b,
                },
            ],
        );
        let h = head(&bytes);
        assert!(h.contains("type=\"ImageData\""), "{h}");
        assert!(h.contains("header_type=\"UInt64\""), "{h}");
        assert!(h.contains("byte_order=\"LittleEndian\""), "{h}");
        assert!(h.contains("WholeExtent=\"0 3 0 2 0 4\""), "{h}");
        assert!(h.contains("<Piece Extent=\"0 3 0 2 0 4\">"), "{h}");
        assert!(h.contains("Spacing=\"2.5 2.5 2.5\""), "{h}");
        assert!(h.contains("Origin=\"0 0 0\""), "{h}");
        assert!(h.contains(">120</DataArray>"), "{h}");
        assert!(h.contains("<CellData Scalars=\"O2_mM\">"), "{h}");
        assert!(
            h.contains("Name=\"O2_mM\" NumberOfComponents=\"1\" format=\"appended\" offset=\"0\"")
        );
        // Second array after the first block: 8-byte count + 24 × 4 bytes.
        assert!(
            h.contains("Name=\"pH\" NumberOfComponents=\"1\" format=\"appended\" offset=\"104\"")
        );
        assert!(h.ends_with("<AppendedData encoding=\"raw\">\n   "), "{h}");

        let data = &bytes[h.len() + 1..];
        let tail = b"\n  </AppendedData>\n</VTKFile>\n";
        assert!(data.ends_with(tail));
        let data = &data[..data.len() - tail.len()];
        assert_eq!(data.len(), 2 * (8 + 4 * g.n_voxels()));
        assert_eq!(
            u64::from_le_bytes(data[..8].try_into().unwrap()),
            4 * g.n_voxels() as u64
        );
        let second = &data[104..];
        assert_eq!(
            u64::from_le_bytes(second[..8].try_into().unwrap()),
            4 * g.n_voxels() as u64
        );
        // Cell (i, j, k) = (2, 1, 3) is value index 2 + 3·(1 + 2·3) = 23 in both.
        let at = |block: &[u8], idx: usize| {
            f32::from_le_bytes(block[8 + 4 * idx..12 + 4 * idx].try_into().unwrap())
        };
        assert_eq!(at(data, 23), 23.0);
        assert_eq!(at(second, 23), -23.0);
    }

    #[test]
    fn pvd_lists_times_in_order_and_replaces_a_rewritten_time() {
        let mut e = Vec::new();
        add_entry(&mut e, 10.0, "fields_t0000010.0s.vti".into());
        add_entry(&mut e, 0.0, "fields_t0000000.0s.vti".into());
        add_entry(&mut e, 0.5, "fields_t0000000.5s.vti".into());
        add_entry(&mut e, 10.0, "fields_t0000010.0s.vti".into());
        let times: Vec<f64> = e.iter().map(|x| x.time_s).collect();
        assert_eq!(times, [0.0, 0.5, 10.0]);
        let text = String::from_utf8(encode_pvd(&e)).unwrap();
        assert!(text.contains("type=\"Collection\""), "{text}");
        assert_eq!(text.matches("<DataSet ").count(), 3, "{text}");
        assert!(
            text.contains(
                "<DataSet timestep=\"0.5\" group=\"\" part=\"0\" file=\"fields_t0000000.5s.vti\"/>"
            ),
            "{text}"
        );
        // The entries survive a round trip through serde (checkpoints persist them).
        let json = serde_json::to_string(&e).unwrap();
        let back: Vec<PvdEntry> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }
}
