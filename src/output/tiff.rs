//! Calibrated 32-bit float TIFF stacks that ImageJ/Fiji opens as a 3D image in µm.
//!
//! A small hand-written baseline TIFF 6.0 encoder (uncompressed, little endian,
//! <https://www.itu.int/itudoc/itu-t/com16/tiff-fx/docs/tiff6.pdf>), laid out the way
//! ImageJ writes its own stacks, because ImageJ reads only the first IFD of a file whose
//! description says `images=n` and then takes the n images as *contiguous* data from the
//! first strip on:
//!
//! ```text
//! 0        header "II", 42, offset of IFD 0
//! 8        ImageDescription (ASCII, NUL, padded to even length)
//!          XResolution, YResolution (two RATIONALs)
//!          image data, padded to start on a 16-byte boundary: page 0, page 1, … page nz−1
//!          IFD 0 … IFD nz−1 (each links to the next; the last links to 0)
//! ```
//!
//! Pages and orientation: page k is z index k; within a page row j is y index j (row 0
//! = y 0, the top row in Fiji, so y points *down* there, unlike the PNGs) and column i
//! is x index i. A page is one strip of nx × ny little-endian f32 (SampleFormat 3,
//! BitsPerSample 32). So `tifffile.imread(path)` has shape (nz, ny, nx) and equals
//! `numpy.load` of the field's `.npy` element for element.
//!
//! Calibration: XResolution = YResolution = 1/voxel_um pixels per µm (a rational),
//! ResolutionUnit 1 (none) and, in the ImageDescription of page 0 (ImageJ's own
//! key=value format, parsed by ImageJ's `FileOpener` and `tifffile`'s
//! `imagej_metadata`):
//!
//! ```text
//! ImageJ=1.11a
//! images=<nz>
//! slices=<nz>
//! unit=micron
//! spacing=<voxel_um>
//! loop=false
//! min=<lo>
//! max=<hi>
//! vunit=<value unit>
//! ```
//!
//! `min`/`max` are the display range (the field's configured range, else its min/max);
//! `vunit` is ImageJ's value unit, which ImageJ applies to 32-bit images (Analyze →
//! Measure reports values "in mM"). Values themselves are the field, unchanged.

use crate::config::Grid;

/// How the stored values relate to the field, recorded in the manifest.
pub const MAPPING: &str = "values are the field itself (f32, in `unit`); lo/hi = ImageJ display range (min/max); page k = z index k, row j = y index j (row 0 = y 0), column i = x index i";

/// Calibration of one stack.
#[derive(Clone, Debug)]
pub struct Calibration<'a> {
    /// Voxel edge, µm (x, y and z).
    pub voxel_um: f64,
    /// Display range, in the field's unit.
    pub lo: f64,
    pub hi: f64,
    /// The field's unit (mM, pH, 1/s, …), written as ImageJ's `vunit`.
    pub value_unit: &'a str,
}

/// ImageJ's version string that tifffile also writes; ImageJ only checks the prefix.
const IMAGEJ_VERSION: &str = "1.11a";

// Tag numbers (TIFF 6.0).
const NEW_SUBFILE_TYPE: u16 = 254;
const IMAGE_WIDTH: u16 = 256;
const IMAGE_LENGTH: u16 = 257;
const BITS_PER_SAMPLE: u16 = 258;
const COMPRESSION: u16 = 259;
const PHOTOMETRIC: u16 = 262;
const IMAGE_DESCRIPTION: u16 = 270;
const STRIP_OFFSETS: u16 = 273;
const SAMPLES_PER_PIXEL: u16 = 277;
const ROWS_PER_STRIP: u16 = 278;
const STRIP_BYTE_COUNTS: u16 = 279;
const X_RESOLUTION: u16 = 282;
const Y_RESOLUTION: u16 = 283;
const RESOLUTION_UNIT: u16 = 296;
const SAMPLE_FORMAT: u16 = 339;

// Field types.
const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

/// A text safe for an ImageJ description value: printable ASCII, `µ` → `u`, no
/// backslash (Java `Properties` escapes), anything else `_`.
fn ascii_value(s: &str) -> String {
    s.replace(['µ', 'μ'], "u")
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The ImageJ description of a stack of `nz` slices (ImageJ writes `images`/`slices`
/// only for stacks, and so does this).
pub fn imagej_description(nz: usize, cal: &Calibration) -> String {
    let mut d = format!("ImageJ={IMAGEJ_VERSION}\n");
    if nz > 1 {
        d.push_str(&format!("images={nz}\nslices={nz}\n"));
    }
    d.push_str("unit=micron\n");
    if nz > 1 {
        d.push_str(&format!("spacing={}\nloop=false\n", cal.voxel_um));
    }
    d.push_str(&format!("min={}\nmax={}\n", cal.lo, cal.hi));
    let vunit = ascii_value(cal.value_unit.trim());
    if !vunit.is_empty() {
        d.push_str(&format!("vunit={vunit}\n"));
    }
    d
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Pixels per µm = 1/`voxel_um` as a TIFF RATIONAL (numerator, denominator), exact for
/// voxel sizes with up to 6 decimals below 4294 µm, else the closest fraction with a
/// power-of-ten numerator that fits. `None` for a voxel size that is not a positive
/// finite number or cannot be represented (above about 4·10⁹ µm).
pub fn pixels_per_um(voxel_um: f64) -> Option<(u32, u32)> {
    if !(voxel_um.is_finite() && voxel_um > 0.0) {
        return None;
    }
    let max = u32::MAX as f64;
    // Largest power-of-ten scale with voxel_um·scale inside u32: 1/voxel = scale/(voxel·scale).
    let (num, den) = (0..=9)
        .rev()
        .map(|p| 10f64.powi(p))
        .map(|scale| (scale, (voxel_um * scale).round()))
        .find(|&(_, den)| den >= 1.0 && den <= max)?;
    let (num, den) = (num as u64, den as u64);
    let g = gcd(num, den);
    Some(((num / g) as u32, (den / g) as u32))
}

/// One IFD entry: tag, type, count and the 4-byte value/offset field.
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    value: [u8; 4],
}

fn short(tag: u16, v: u16) -> Entry {
    let b = v.to_le_bytes();
    Entry {
        tag,
        typ: SHORT,
        count: 1,
        value: [b[0], b[1], 0, 0],
    }
}

fn long(tag: u16, v: u32) -> Entry {
    Entry {
        tag,
        typ: LONG,
        count: 1,
        value: v.to_le_bytes(),
    }
}

fn at_offset(tag: u16, typ: u16, count: u32, offset: u32) -> Entry {
    Entry {
        tag,
        typ,
        count,
        value: offset.to_le_bytes(),
    }
}

/// Where the parts of a stack go (see the module's layout).
struct Layout {
    /// The ImageJ description, NUL-terminated, padded to even length.
    description: Vec<u8>,
    /// Its length before the padding.
    description_len: usize,
    page_bytes: u64,
    /// Bytes of the IFD of a page.
    ifd_bytes: fn(usize) -> u64,
    description_at: u64,
    resolution_at: u64,
    data_at: u64,
    ifds_at: u64,
    total: u64,
}

fn layout(grid: &Grid, cal: &Calibration) -> Layout {
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz);
    let mut description = imagej_description(nz, cal).into_bytes();
    description.push(0);
    let description_len = description.len();
    if description_len % 2 == 1 {
        description.push(0);
    }
    let page_bytes = 4 * nx as u64 * ny as u64;
    // 14 tags per page, 15 on page 0 (the description).
    let ifd_bytes: fn(usize) -> u64 = |page| 2 + 12 * (14 + (page == 0) as u64) + 4;
    let description_at = 8u64;
    let resolution_at = description_at + description.len() as u64;
    let data_at = (resolution_at + 16).div_ceil(16) * 16;
    let ifds_at = data_at + page_bytes * nz as u64;
    let total = ifds_at + (0..nz).map(ifd_bytes).sum::<u64>();
    Layout {
        description,
        description_len,
        page_bytes,
        ifd_bytes,
        description_at,
        resolution_at,
        data_at,
        ifds_at,
        total,
    }
}

/// Bytes of the stack [`encode_stack`] writes for a field on `grid` with `cal`.
pub fn stack_bytes(grid: &Grid, cal: &Calibration) -> u64 {
    layout(grid, cal).total
}

/// Encodes `field` (x fastest, `grid.n_voxels()` values) as a multi-page f32 TIFF with
/// ImageJ calibration. Errors (as a message with the fix) when the file would not fit
/// the 4 GiB of a classic TIFF or the voxel size has no rational form.
pub fn encode_stack(field: &[f32], grid: &Grid, cal: &Calibration) -> Result<Vec<u8>, String> {
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz);
    let resolution = pixels_per_um(cal.voxel_um).ok_or_else(|| {
        format!(
            "voxel size {} µm has no TIFF resolution (1/voxel as a 32-bit fraction). Fix: set output.tiff = false",
            cal.voxel_um
        )
    })?;
    let Layout {
        description,
        description_len,
        page_bytes,
        ifd_bytes,
        description_at,
        resolution_at,
        data_at,
        ifds_at,
        total,
    } = layout(grid, cal);
    if total > u32::MAX as u64 {
        return Err(format!(
            "a {nx}×{ny}×{nz} f32 stack needs {total} bytes, more than the 4 GiB a classic TIFF can address. Fix: set output.tiff = false (the .npy and .vti of the field have no such limit) or use a smaller grid.shape"
        ));
    }

    if field.len() != grid.n_voxels() {
        return Err(format!(
            "the field has {} values, the grid {} voxels",
            field.len(),
            grid.n_voxels()
        ));
    }

    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(b"II");
    out.extend_from_slice(&42u16.to_le_bytes());
    out.extend_from_slice(&(ifds_at as u32).to_le_bytes());
    out.extend_from_slice(&description);
    for _ in 0..2 {
        out.extend_from_slice(&resolution.0.to_le_bytes());
        out.extend_from_slice(&resolution.1.to_le_bytes());
    }
    out.resize(data_at as usize, 0);
    for v in field {
        out.extend_from_slice(&v.to_le_bytes());
    }
    debug_assert_eq!(out.len() as u64, ifds_at);

    let mut ifd_at = ifds_at;
    for page in 0..nz {
        let mut entries = vec![
            long(NEW_SUBFILE_TYPE, 0),
            long(IMAGE_WIDTH, nx as u32),
            long(IMAGE_LENGTH, ny as u32),
            short(BITS_PER_SAMPLE, 32),
            short(COMPRESSION, 1),
            short(PHOTOMETRIC, 1), // BlackIsZero
        ];
        if page == 0 {
            entries.push(at_offset(
                IMAGE_DESCRIPTION,
                ASCII,
                description_len as u32,
                description_at as u32,
            ));
        }
        entries.extend([
            long(STRIP_OFFSETS, (data_at + page as u64 * page_bytes) as u32),
            short(SAMPLES_PER_PIXEL, 1),
            long(ROWS_PER_STRIP, ny as u32),
            long(STRIP_BYTE_COUNTS, page_bytes as u32),
            at_offset(X_RESOLUTION, RATIONAL, 1, resolution_at as u32),
            at_offset(Y_RESOLUTION, RATIONAL, 1, resolution_at as u32 + 8),
            short(RESOLUTION_UNIT, 1), // none: the unit is the description's `unit`
            short(SAMPLE_FORMAT, 3),   // IEEE floating point
        ]);
        debug_assert_eq!(2 + 12 * entries.len() as u64 + 4, ifd_bytes(page));
        let next = if page + 1 < nz {
            ifd_at + ifd_bytes(page)
        } else {
            0
        };
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for e in &entries {
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.typ.to_le_bytes());
            out.extend_from_slice(&e.count.to_le_bytes());
            out.extend_from_slice(&e.value);
        }
        out.extend_from_slice(&(next as u32).to_le_bytes());
        ifd_at += ifd_bytes(page);
    }
    debug_assert_eq!(out.len() as u64, total);
    Ok(out)
}

impl super::RunWriter {
    /// Writes `tiff/<field>_<time>.tif`, the stack of one field at one time with display
    /// range `lo_hi` (in `unit`), and records it in the manifest (kind `tiff`).
    pub(super) fn write_tiff(
        &mut self,
        field_name: &str,
        unit: &str,
        (lo, hi): (f64, f64),
        field: &[f32],
        time_s: f64,
        step: u64,
    ) -> Result<(), super::Error> {
        let grid = self.scenario.grid;
        let tag = super::time_tag(time_s, self.time_decimals);
        let rel = format!("tiff/{}_{tag}.tif", super::path_component(field_name));
        let cal = Calibration {
            voxel_um: grid.voxel_um,
            lo,
            hi,
            value_unit: unit,
        };
        let bytes = encode_stack(field, &grid, &cal).map_err(|message| super::Error::Encode {
            path: self.out_dir.join(&rel),
            message: format!("field {field_name} at t = {time_s} s: {message}"),
        })?;
        let record = super::FileRecord {
            axis: Some("z".to_string()),
            lo: Some(lo),
            hi: Some(hi),
            mapping: Some(MAPPING.to_string()),
            ..super::FileRecord::of_field("tiff", field_name, unit, time_s, step)
        };
        self.files.retain(|f| f.path != rel);
        super::write_file(&self.out_dir, &mut self.files, rel, &bytes, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// A minimal reader for the structure written here: every IFD as (tag → (type,
    /// count, value/offset)), following the chain from the header.
    fn ifds(b: &[u8]) -> Vec<Vec<(u16, u16, u32, u32)>> {
        assert_eq!(&b[..4], b"II*\0");
        let mut at = u32_at(b, 4) as usize;
        let mut out = Vec::new();
        while at != 0 {
            assert_eq!(at % 2, 0, "IFD at odd offset {at}");
            let n = u16_at(b, at) as usize;
            let entries: Vec<_> = (0..n)
                .map(|e| {
                    let p = at + 2 + 12 * e;
                    (
                        u16_at(b, p),
                        u16_at(b, p + 2),
                        u32_at(b, p + 4),
                        u32_at(b, p + 8),
                    )
                })
                .collect();
            let tags: Vec<u16> = entries.iter().map(|e| e.0).collect();
            assert!(
                tags.windows(2).all(|w| w[0] < w[1]),
                "tags unsorted: {tags:?}"
            );
            out.push(entries);
            at = u32_at(b, at + 2 + 12 * n) as usize;
            assert!(out.len() <= 10_000, "IFD loop");
        }
        out
    }

    fn tag(ifd: &[(u16, u16, u32, u32)], t: u16) -> (u16, u32, u32) {
        let e = ifd
            .iter()
            .find(|e| e.0 == t)
            .unwrap_or_else(|| panic!("tag {t} missing"));
        (e.1, e.2, e.3)
    }

    #[test]
    fn stack_has_one_ifd_per_z_slice_and_contiguous_pages() {
        let g = Grid {
            nx: 5,
            ny: 3,
            nz: 4,
            voxel_um: 2.5,
        };
        let field: Vec<f32> = (0..g.n_voxels()).map(|i| i as f32 * 0.25 - 1.0).collect();
        let cal = Calibration {
            voxel_um: 2.5,
            lo: -1.0,
            hi: 13.75,
            value_unit: "mM",
        };
        let b = encode_stack(&field, &g, &cal).expect("encodes");
        let ifds = ifds(&b);
        assert_eq!(ifds.len(), 4);
        let page_bytes = 5 * 3 * 4;
        let first = tag(&ifds[0], STRIP_OFFSETS).2 as usize;
        assert_eq!(first % 16, 0);
        for (k, ifd) in ifds.iter().enumerate() {
            assert_eq!(tag(ifd, IMAGE_WIDTH), (LONG, 1, 5));
            assert_eq!(tag(ifd, IMAGE_LENGTH), (LONG, 1, 3));
            assert_eq!(tag(ifd, BITS_PER_SAMPLE), (SHORT, 1, 32));
            assert_eq!(tag(ifd, SAMPLE_FORMAT), (SHORT, 1, 3));
            assert_eq!(tag(ifd, COMPRESSION), (SHORT, 1, 1));
            assert_eq!(tag(ifd, RESOLUTION_UNIT), (SHORT, 1, 1));
            assert_eq!(tag(ifd, ROWS_PER_STRIP), (LONG, 1, 3));
            assert_eq!(tag(ifd, STRIP_BYTE_COUNTS), (LONG, 1, page_bytes as u32));
            // Contiguous: page k follows page k−1 (ImageJ reads them that way).
            let off = tag(ifd, STRIP_OFFSETS).2 as usize;
            assert_eq!(off, first + k * page_bytes);
            // Pixel (col 4, row 2) of page k is voxel (4, 2, k).
            let px = f32::from_le_bytes(b[off + 4 * (4 + 5 * 2)..][..4].try_into().unwrap());
            assert_eq!(px, field[4 + 5 * (2 + 3 * k)]);
            let (typ, count, at) = tag(ifd, X_RESOLUTION);
            assert_eq!((typ, count), (RATIONAL, 1));
            let (num, den) = (u32_at(&b, at as usize), u32_at(&b, at as usize + 4));
            assert_eq!((num, den), (2, 5), "1/2.5 µm = 2/5 px per µm");
            let (_, _, at_y) = tag(ifd, Y_RESOLUTION);
            assert_eq!(
                &b[at_y as usize..at_y as usize + 8],
                &b[at as usize..at as usize + 8]
            );
            assert_eq!(
                ifd.iter().any(|e| e.0 == IMAGE_DESCRIPTION),
                k == 0,
                "description on page 0 only"
            );
        }
        let (typ, count, at) = tag(&ifds[0], IMAGE_DESCRIPTION);
        assert_eq!(typ, ASCII);
        let text = &b[at as usize..(at + count) as usize];
        assert_eq!(text.last(), Some(&0), "ASCII ends with NUL");
        let text = std::str::from_utf8(&text[..text.len() - 1]).unwrap();
        assert_eq!(
            text,
            "ImageJ=1.11a\nimages=4\nslices=4\nunit=micron\nspacing=2.5\nloop=false\nmin=-1\nmax=13.75\nvunit=mM\n"
        );
        // The file ends with the last IFD.
        let last_ifd_len = 2 + 12 * 14 + 4;
        assert_eq!(
            b.len(),
            tag(&ifds[0], STRIP_OFFSETS).2 as usize
                + 4 * page_bytes
                + (2 + 12 * 15 + 4)
                + 3 * last_ifd_len
        );
    }

    #[test]
    fn resolution_is_pixels_per_um_as_a_reduced_fraction() {
        assert_eq!(pixels_per_um(20.0), Some((1, 20)));
        assert_eq!(pixels_per_um(2.5), Some((2, 5)));
        assert_eq!(pixels_per_um(0.1), Some((10, 1)));
        let (n, d) = pixels_per_um(10.0 / 3.0).unwrap();
        assert!((d as f64 / n as f64 - 10.0 / 3.0).abs() < 1e-8, "{n}/{d}");
        assert!(pixels_per_um(0.0).is_none());
        assert!(pixels_per_um(f64::NAN).is_none());
        assert!(pixels_per_um(1e12).is_none());
    }

    #[test]
    fn single_slice_and_unit_text_and_errors() {
        let g = Grid {
            nx: 2,
            ny: 2,
            nz: 1,
            voxel_um: 10.0,
        };
        let cal = Calibration {
            voxel_um: 10.0,
            lo: 0.0,
            hi: 1.0,
            value_unit: "µM\\x",
        };
        let d = imagej_description(1, &cal);
        assert_eq!(d, "ImageJ=1.11a\nunit=micron\nmin=0\nmax=1\nvunit=uM_x\n");
        let b = encode_stack(&[1.0; 4], &g, &cal).expect("encodes");
        assert_eq!(ifds(&b).len(), 1);
        let err = encode_stack(&[1.0; 3], &g, &cal).unwrap_err();
        assert!(err.contains("3 values"), "{err}");
        let huge = Grid {
            nx: 1024,
            ny: 1024,
            nz: 1024,
            voxel_um: 1.0,
        };
        // The size check comes before the length check and any allocation.
        let err = encode_stack(&[], &huge, &cal).unwrap_err();
        assert!(
            err.contains("4 GiB") && err.contains("output.tiff = false"),
            "{err}"
        );
    }
}
