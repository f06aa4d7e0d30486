//! The geometry of `[vessel_network]`: capillary networks generated from a seed (straight
//! or branching) or read from a CSV file of polylines, as capsule segments in µm.
//!
//! Reproducibility: all randomness comes from [`SplitMix64`] (`crate::random`, written
//! out there, not a crate), and only correctly rounded IEEE-754 operations (+, −, ×, ÷, sqrt) touch the
//! coordinates: random directions are drawn by rejection in the unit ball rather than with
//! sin/cos, whose rounding differs between libms. The same seed gives the same segments
//! bit for bit on every platform and crate version.

use glam::DVec3;

pub use crate::random::SplitMix64;

/// See [`super::MAX_NETWORK_SEGMENTS`].
pub const MAX_NETWORK_SEGMENTS: usize = 1_000_000;

/// One capsule of a network, µm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub start_um: DVec3,
    pub end_um: DVec3,
    pub radius_um: f64,
}

impl Segment {
    pub fn length_um(&self) -> f64 {
        self.start_um.distance(self.end_um)
    }
}

/// Settings of the branching generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Branching {
    /// Length of one growth step, µm.
    pub segment_um: f64,
    /// Weight of the previous direction in the next one, in [0, 1).
    pub persistence: f64,
    /// Chance per growth step that a tip splits in two.
    pub branch_probability: f64,
}

/// Parallel capillaries along `axis` (0 = x, 1 = y, 2 = z) through the whole box, with
/// `round(A/spacing²)` lines in a cross-section of area A: length density 1/spacing²
/// (up to the rounding of the count). Positions: sequential dart throwing with a minimum
/// distance (a Poisson-disc-like process, Bridson-style), starting at 0.7·spacing and
/// shrinking by 10 % after 200 failed candidates, so the count is always exact. Centres
/// stay at least one radius inside the box.
pub fn straight(
    extent_um: DVec3,
    axis: usize,
    spacing_um: f64,
    radius_um: f64,
    seed: u64,
) -> Vec<Segment> {
    let (u, v) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let (eu, ev) = (extent_um[u], extent_um[v]);
    let n = ((eu * ev) / (spacing_um * spacing_um)).round().max(1.0) as usize;
    let mut rng = SplitMix64::new(seed);
    let margin_u = radius_um.min(0.5 * eu);
    let margin_v = radius_um.min(0.5 * ev);
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(n);
    let mut min_dist = 0.7 * spacing_um;
    // Placed points by cell of a uniform grid of edge ≥ min_dist (which only shrinks), so a
    // candidate is compared with the points of its 3×3 cells only: O(n) in all instead of
    // O(n²). The answer is the same as comparing with every point (see `CellGrid`), so
    // the random sequence and the segments are unchanged, bit for bit.
    let mut cells = CellGrid::new(eu, ev, n, min_dist);
    while points.len() < n {
        let mut placed = false;
        for _ in 0..200 {
            let p = (
                rng.uniform(margin_u, eu - margin_u),
                rng.uniform(margin_v, ev - margin_v),
            );
            let ok = cells.near(p).all(|i| {
                let q = points[i];
                let (du, dv) = (p.0 - q.0, p.1 - q.1);
                du * du + dv * dv >= min_dist * min_dist
            });
            if ok {
                cells.insert(p);
                points.push(p);
                placed = true;
                break;
            }
        }
        if !placed {
            min_dist *= 0.9;
        }
    }
    points
        .into_iter()
        .map(|(pu, pv)| {
            let mut a = DVec3::ZERO;
            a[u] = pu;
            a[v] = pv;
            let mut b = a;
            b[axis] = extent_um[axis];
            Segment {
                start_um: a,
                end_um: b,
                radius_um,
            }
        })
        .collect()
}

/// Points of the rectangle [0, eu] × [0, ev] binned in a dense grid of square cells of
/// edge `cell` (linked lists: `head` per cell, `next` per point). A point two or more
/// cells away in u or v from the candidate's cell is farther than `cell` from it, so
/// [`CellGrid::near`] omits only points that pass any distance test with a threshold
/// ≤ `cell / 1.01` (the 1 % margin covers the rounding of the cell index).
struct CellGrid {
    cell: f64,
    nu: usize,
    nv: usize,
    head: Vec<u32>,
    next: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl CellGrid {
    /// Cells for `n` points and distance tests with thresholds up to `max_dist` (> 0).
    /// The edge is also at least sqrt(area / 4n) and max(eu, ev) / 4n, so there are at
    /// most about 16·n cells whatever the shape of the rectangle.
    fn new(eu: f64, ev: f64, n: usize, max_dist: f64) -> CellGrid {
        let n4 = 4.0 * n.max(1) as f64;
        let cell = (1.01 * max_dist)
            .max((eu * ev / n4).sqrt())
            .max(eu.max(ev) / n4);
        let count = |e: f64| ((e / cell).ceil() as usize).max(1);
        let (nu, nv) = (count(eu), count(ev));
        CellGrid {
            cell,
            nu,
            nv,
            head: vec![NONE; nu * nv],
            next: Vec::with_capacity(n),
        }
    }
    fn key(&self, p: (f64, f64)) -> (usize, usize) {
        // `as` saturates (and maps NaN to 0); the clamp keeps the box's far edge inside.
        let k = |x: f64, n: usize| ((x / self.cell).floor().max(0.0) as usize).min(n - 1);
        (k(p.0, self.nu), k(p.1, self.nv))
    }
    /// Adds point `index`; points must be added in index order 0, 1, 2, …
    fn insert(&mut self, p: (f64, f64)) {
        let (ku, kv) = self.key(p);
        let c = ku + self.nu * kv;
        self.next.push(self.head[c]);
        self.head[c] = (self.next.len() - 1) as u32;
    }
    /// Indices of the points in the 3×3 cells around `p`.
    fn near(&self, p: (f64, f64)) -> impl Iterator<Item = usize> + '_ {
        let (ku, kv) = self.key(p);
        let us = ku.saturating_sub(1)..=(ku + 1).min(self.nu - 1);
        let vs = kv.saturating_sub(1)..=(kv + 1).min(self.nv - 1);
        vs.flat_map(move |v| us.clone().map(move |u| u + self.nu * v))
            .flat_map(move |c| {
                let mut i = self.head[c];
                std::iter::from_fn(move || {
                    (i != NONE).then(|| {
                        let here = i;
                        i = self.next[here as usize];
                        here as usize
                    })
                })
            })
    }
}

/// Random trees grown from the inflow face (`axis` = 0) until the total length reaches
/// `target_length_um`. Tips are grown round-robin (first in, first out), so all trees grow
/// together: each step goes `segment_um` along normalize(p·d + (1 − p)·w), d the previous
/// direction, w a random unit vector, p the persistence; a step that would leave the box is
/// clipped at the box face and the tip stops there. With `branch_probability` a tip splits:
/// the daughter starts at the same point in direction normalize(d + w'). When no tip is
/// left a new tree starts at a uniformly random point of the inflow face, heading +axis.
/// The last segment is shortened so the total is exactly the target.
pub fn branching(
    extent_um: DVec3,
    axis: usize,
    target_length_um: f64,
    radius_um: f64,
    b: Branching,
    seed: u64,
) -> Vec<Segment> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    let mut total = 0.0;
    let mut tips: std::collections::VecDeque<(DVec3, DVec3)> = Default::default();
    let mut axis_dir = DVec3::ZERO;
    axis_dir[axis] = 1.0;
    // Bounded so a degenerate box cannot loop forever (each step adds ≥ 1e-9 µm or stops a
    // tip, and each new tree adds a step).
    let max_steps = 10_000_000usize;
    let mut steps = 0;
    while total < target_length_um && steps < max_steps {
        steps += 1;
        let Some((p, d)) = tips.pop_front() else {
            let mut p = DVec3::ZERO;
            for a in 0..3 {
                if a != axis {
                    p[a] = rng.uniform(0.0, extent_um[a]);
                }
            }
            tips.push_back((p, axis_dir));
            continue;
        };
        let w = rng.unit_vector();
        let mut dir = b.persistence * d + (1.0 - b.persistence) * w;
        if dir.length_squared() < 1e-12 {
            dir = d;
        }
        dir = dir.normalize();
        // Largest s ≤ segment_um keeping p + s·dir in the box.
        let mut s = b.segment_um;
        let mut clipped = false;
        for a in 0..3 {
            if dir[a] > 0.0 {
                let room = (extent_um[a] - p[a]) / dir[a];
                if room < s {
                    s = room;
                    clipped = true;
                }
            } else if dir[a] < 0.0 {
                let room = -p[a] / dir[a];
                if room < s {
                    s = room;
                    clipped = true;
                }
            }
        }
        s = s.max(0.0).min(target_length_um - total);
        if s <= 1e-9 {
            continue; // tip at a face: stops
        }
        // Clamped: p + room·dir can round to just outside a face.
        let q = (p + s * dir).clamp(DVec3::ZERO, extent_um);
        out.push(Segment {
            start_um: p,
            end_um: q,
            radius_um,
        });
        total += s;
        if !clipped {
            tips.push_back((q, dir));
            if rng.next_f64() < b.branch_probability {
                let w2 = rng.unit_vector();
                let mut d2 = dir + w2;
                if d2.length_squared() < 1e-12 {
                    d2 = dir;
                }
                tips.push_back((q, d2.normalize()));
            }
        }
    }
    out
}

/// A parse error of a segment file: line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvError {
    pub line: usize,
    pub problem: String,
}

/// Reads `polyline,x_um,y_um,z_um,radius_um` rows (header required, `#` comments and
/// blank lines skipped). Consecutive rows with the same polyline id are joined by a
/// capsule whose radius is the mean of the two rows' radii.
pub fn parse_csv(text: &str) -> Result<Vec<Segment>, CsvError> {
    const HEADER: [&str; 5] = ["polyline", "x_um", "y_um", "z_um", "radius_um"];
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((hline, header)) = lines.next() else {
        return Err(CsvError {
            line: 1,
            problem: "the file is empty (a header `polyline,x_um,y_um,z_um,radius_um` and rows are expected)".into(),
        });
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    if cols != HEADER {
        return Err(CsvError {
            line: hline + 1,
            problem: format!(
                "the header must be `polyline,x_um,y_um,z_um,radius_um`, found `{}`",
                header.trim()
            ),
        });
    }
    let mut out = Vec::new();
    let mut prev: Option<(String, DVec3, f64)> = None;
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 5 {
            return Err(CsvError {
                line: i + 1,
                problem: format!("expected 5 columns, found {}", f.len()),
            });
        }
        let mut v = [0.0; 4];
        for (k, x) in f[1..].iter().enumerate() {
            v[k] = x
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| CsvError {
                    line: i + 1,
                    problem: format!("column `{}` is not a finite number: `{x}`", HEADER[k + 1]),
                })?;
        }
        if v[3] <= 0.0 {
            return Err(CsvError {
                line: i + 1,
                problem: format!("radius_um must be > 0, found {}", v[3]),
            });
        }
        let p = DVec3::new(v[0], v[1], v[2]);
        if let Some((id, q, r)) = &prev {
            if id == f[0] && *q != p {
                if out.len() == MAX_NETWORK_SEGMENTS {
                    return Err(CsvError {
                        line: i + 1,
                        problem: format!(
                            "more than {MAX_NETWORK_SEGMENTS} segments (the limit of a vessel network)"
                        ),
                    });
                }
                out.push(Segment {
                    start_um: *q,
                    end_um: p,
                    radius_um: 0.5 * (r + v[3]),
                });
            }
        }
        prev = Some((f[0].to_string(), p, v[3]));
    }
    if out.is_empty() {
        return Err(CsvError {
            line: 1,
            problem: "no segment: a polyline needs at least two consecutive rows with the same id and different points".into(),
        });
    }
    Ok(out)
}

/// Total length of the segments inside the box [0, extent], µm (each segment clipped to
/// the box, Liang–Barsky).
pub fn length_in_box_um(segments: &[Segment], extent_um: DVec3) -> f64 {
    segments
        .iter()
        .map(|s| {
            let d = s.end_um - s.start_um;
            let (mut t0, mut t1) = (0.0f64, 1.0f64);
            for a in 0..3 {
                if d[a] == 0.0 {
                    if s.start_um[a] < 0.0 || s.start_um[a] > extent_um[a] {
                        return 0.0;
                    }
                } else {
                    let ta = (0.0 - s.start_um[a]) / d[a];
                    let tb = (extent_um[a] - s.start_um[a]) / d[a];
                    t0 = t0.max(ta.min(tb));
                    t1 = t1.min(ta.max(tb));
                }
            }
            (t1 - t0).max(0.0) * d.length()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of Vigna's splitmix64.c seeded with 1234567.
        let mut r = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423
            ]
        );
    }

    /// The placement before the cell grid: every candidate against every placed point.
    fn straight_points_reference(
        eu: f64,
        ev: f64,
        n: usize,
        spacing: f64,
        r: f64,
        seed: u64,
    ) -> Vec<(f64, f64)> {
        let mut rng = SplitMix64::new(seed);
        let (mu, mv) = (r.min(0.5 * eu), r.min(0.5 * ev));
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut min_dist = 0.7 * spacing;
        while points.len() < n {
            let mut placed = false;
            for _ in 0..200 {
                let p = (rng.uniform(mu, eu - mu), rng.uniform(mv, ev - mv));
                if points.iter().all(|q| {
                    let (du, dv) = (p.0 - q.0, p.1 - q.1);
                    du * du + dv * dv >= min_dist * min_dist
                }) {
                    points.push(p);
                    placed = true;
                    break;
                }
            }
            if !placed {
                min_dist *= 0.9;
            }
        }
        points
    }

    /// The cell grid changes the cost, not the result: the same points bit for bit,
    /// including boxes where the spacing shrinks many times and very elongated ones.
    #[test]
    fn straight_placement_matches_the_quadratic_reference() {
        for (extent, spacing, radius, seed) in [
            (DVec3::new(640.0, 640.0, 640.0), 100.0, 5.0, 7),
            (DVec3::new(2000.0, 1500.0, 640.0), 40.0, 4.0, 1),
            (DVec3::new(300.0, 300.0, 10.0), 5.0, 1.0, 3),
            (DVec3::new(5000.0, 30.0, 10.0), 12.0, 2.0, 11),
            (DVec3::new(50.0, 50.0, 50.0), 500.0, 30.0, 5),
        ] {
            let got = straight(extent, 2, spacing, radius, seed);
            let n = got.len();
            let want = straight_points_reference(extent.x, extent.y, n, spacing, radius, seed);
            let got: Vec<(f64, f64)> = got.iter().map(|s| (s.start_um.x, s.start_um.y)).collect();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    (g.0.to_bits(), g.1.to_bits()),
                    (w.0.to_bits(), w.1.to_bits())
                );
            }
        }
    }

    #[test]
    fn csv_polylines_become_capsules() {
        let text = "polyline,x_um,y_um,z_um,radius_um\n0,0,0,0,4\n0,10,0,0,6\n0,10,10,0,6\n1,5,5,5,3\n1,5,5,25,3\n";
        let s = parse_csv(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].radius_um, 5.0);
        assert_eq!(s[2].length_um(), 20.0);
        let e = parse_csv("polyline,x,y,z,r\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_csv("polyline,x_um,y_um,z_um,radius_um\n0,1,2,oops,3\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.problem.contains("z_um"), "{}", e.problem);
    }
}
