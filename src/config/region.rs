//! Region shapes (sphere, box, cylinder, capsule, gaussian): the geometric keys shared by
//! `tissues.<name>`, `species.<name>.initial.regions[i]`, `vessels[i]` and `dosing[i]`, and
//! their check → [`Region`].

use glam::DVec3;

use super::checks::{finite, fmt_vec, join, positive};
use super::error::{did_you_mean, list, Error, ErrorKind};
use super::scenario::{Grid, Region};

const SHAPES: [&str; 5] = ["sphere", "box", "cylinder", "capsule", "gaussian"];

/// The geometric keys of a region table, borrowed, whatever table they came from.
pub struct RegionKeys<'a> {
    pub shape: &'a str,
    pub centre_um: Option<&'a [f64]>,
    pub radius_um: Option<f64>,
    pub min_um: Option<&'a [f64]>,
    pub max_um: Option<&'a [f64]>,
    pub start_um: Option<&'a [f64]>,
    pub end_um: Option<&'a [f64]>,
    pub sigma_um: Option<f64>,
}

/// A region table plus the extra keys of its context (`value_mm`, `hold_mm`). A macro
/// rather than `#[serde(flatten)]`, which does not work with `deny_unknown_fields`.
macro_rules! region_table {
    ($(#[$m:meta])* $name:ident { $($extra:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub shape: String,
            pub centre_um: Option<Vec<f64>>,
            pub radius_um: Option<f64>,
            pub min_um: Option<Vec<f64>>,
            pub max_um: Option<Vec<f64>>,
            pub start_um: Option<Vec<f64>>,
            pub end_um: Option<Vec<f64>>,
            pub sigma_um: Option<f64>,
            $(pub $extra: $ty,)*
        }

        impl $name {
            pub fn keys(&self) -> $crate::config::region::RegionKeys<'_> {
                $crate::config::region::RegionKeys {
                    shape: &self.shape,
                    centre_um: self.centre_um.as_deref(),
                    radius_um: self.radius_um,
                    min_um: self.min_um.as_deref(),
                    max_um: self.max_um.as_deref(),
                    start_um: self.start_um.as_deref(),
                    end_um: self.end_um.as_deref(),
                    sigma_um: self.sigma_um,
                }
            }
        }
    };
}

pub(super) use region_table;

/// A point `[x, y, z]` of finite numbers.
fn vec3(v: &[f64], field: &str) -> Result<DVec3, Error> {
    if v.len() != 3 {
        return Err(
            Error::invalid(field, "must be a point [x, y, z] of 3 numbers in µm")
                .found(fmt_vec(v))
                .fix("give exactly three coordinates, e.g. [320.0, 320.0, 320.0]"),
        );
    }
    for &x in v {
        finite(x, field)?;
    }
    Ok(DVec3::new(v[0], v[1], v[2]))
}

/// Which keys each shape takes, in the order they are listed in messages.
fn shape_keys(shape: &str) -> &'static [&'static str] {
    match shape {
        "sphere" => &["centre_um", "radius_um"],
        "box" => &["min_um", "max_um"],
        "cylinder" | "capsule" => &["start_um", "end_um", "radius_um"],
        "gaussian" => &["centre_um", "sigma_um"],
        _ => &[],
    }
}

/// The region at `path`: the keys its shape takes, and no other, points inside the grid.
pub(super) fn validate(k: RegionKeys<'_>, path: &str, grid: &Grid) -> Result<Region, Error> {
    let shape = k.shape;
    if !SHAPES.contains(&shape) {
        return Err(Error::invalid(
            join(path, "shape"),
            format!("unknown region shape{}", did_you_mean(shape, SHAPES)),
        )
        .found(format!("{shape:?}"))
        .fix(format!("use one of {}", list(SHAPES))));
    }
    let allowed = shape_keys(shape);
    let present = [
        ("centre_um", k.centre_um.is_some()),
        ("radius_um", k.radius_um.is_some()),
        ("min_um", k.min_um.is_some()),
        ("max_um", k.max_um.is_some()),
        ("start_um", k.start_um.is_some()),
        ("end_um", k.end_um.is_some()),
        ("sigma_um", k.sigma_um.is_some()),
    ];
    for (key, is) in present {
        if is && !allowed.contains(&key) {
            return Err(Error::invalid(
                join(path, key),
                format!("`{key}` is not a field of shape \"{shape}\""),
            )
            .fix(format!(
                "remove `{key}`; shape \"{shape}\" takes {}",
                list(allowed.iter().copied())
            )));
        }
    }
    for key in allowed {
        if !present.iter().any(|(p, is)| p == key && *is) {
            return Err(Error::new(
                ErrorKind::MissingKey,
                join(path, key),
                format!("required by shape \"{shape}\" but missing"),
            )
            .fix(format!(
                "add `{key}`; shape \"{shape}\" takes {}",
                list(allowed.iter().copied())
            )));
        }
    }

    // Presence was checked above; `unwrap_or` only keeps this free of panics.
    let point = |v: Option<&[f64]>, key: &str| -> Result<DVec3, Error> {
        let field = join(path, key);
        let p = vec3(v.unwrap_or(&[]), &field)?;
        inside_grid(p, &field, grid)?;
        Ok(p)
    };
    let length = |v: Option<f64>, key: &str, what: &str| -> Result<f64, Error> {
        positive(
            v.unwrap_or(0.0),
            &join(path, key),
            &format!("set a positive {what} in µm"),
        )
    };
    let region =
        match shape {
            "sphere" => Region::Sphere {
                centre_um: point(k.centre_um, "centre_um")?,
                radius_um: length(k.radius_um, "radius_um", "radius")?,
            },
            "box" => {
                let min_um = point(k.min_um, "min_um")?;
                let max_um = point(k.max_um, "max_um")?;
                for a in 0..3 {
                    if min_um[a] >= max_um[a] {
                        let axis = ["x", "y", "z"][a];
                        return Err(Error::invalid(
                            join(path, "max_um"),
                            format!(
                            "must be greater than min_um on every axis ({axis}: max {} ≤ min {})",
                            max_um[a], min_um[a]
                        ),
                        )
                        .found(fmt_vec(&max_um.to_array()))
                        .fix("give the lower corner in min_um and the upper corner in max_um"));
                    }
                }
                Region::Box { min_um, max_um }
            }
            "cylinder" | "capsule" => {
                let start_um = point(k.start_um, "start_um")?;
                let end_um = point(k.end_um, "end_um")?;
                if start_um == end_um {
                    return Err(Error::invalid(join(path, "end_um"), "must differ from start_um")
                    .found(fmt_vec(&end_um.to_array()))
                    .fix("give two distinct axis end points (use shape = \"sphere\" for a ball)"));
                }
                let radius_um = length(k.radius_um, "radius_um", "radius")?;
                if shape == "cylinder" {
                    Region::Cylinder {
                        start_um,
                        end_um,
                        radius_um,
                    }
                } else {
                    Region::Capsule {
                        start_um,
                        end_um,
                        radius_um,
                    }
                }
            }
            _ => Region::Gaussian {
                centre_um: point(k.centre_um, "centre_um")?,
                sigma_um: length(k.sigma_um, "sigma_um", "width σ")?,
            },
        };
    Ok(region)
}

fn inside_grid(p: DVec3, field: &str, grid: &Grid) -> Result<(), Error> {
    let ext = grid.extent_um();
    for a in 0..3 {
        if !(0.0..=ext[a]).contains(&p[a]) {
            let axis = ["x", "y", "z"][a];
            return Err(Error::invalid(
                field,
                format!("outside the grid: domain is [0, {}] µm on {axis}", ext[a]),
            )
            .found(fmt_vec(&p.to_array()))
            .fix(format!(
                "move the point inside [0, {}] µm (domain = grid.shape × grid.voxel_um), or enlarge the grid",
                ext[a]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn region_outside_the_grid() {
        let text = edited(&[(
            "centre_um = [320.0, 320.0, 320.0]",
            "centre_um = [700.0, 320.0, 320.0]",
        )]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.centre_um");
        assert!(msg.contains("outside the grid"), "{msg}");
        assert!(msg.contains("[0, 640] µm on x"), "{msg}");
        let line = line_of(&text, "centre_um = [700.0");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // Vessel end points too, by index.
        let text = edited(&[(
            "end_um = [540.0, 150.0, 640.0]",
            "end_um = [540.0, 150.0, 641.0]",
        )]);
        let msg = check(&load_err(&text, &[]), "vessels[1].end_um");
        assert!(msg.contains("on z"), "{msg}");
    }

    #[test]
    fn region_fields_follow_the_shape() {
        let text = edited(&[("shape = \"sphere\"", "shape = \"box\"")]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.centre_um");
        assert!(
            msg.contains("`centre_um` is not a field of shape \"box\""),
            "{msg}"
        );
        let text = edited(&[("radius_um = 200.0\n", "")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        check(&e, "tissues.tumour.radius_um");
        let text = edited(&[("shape = \"sphere\"", "shape = \"spere\"")]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.shape");
        assert!(msg.contains("did you mean `sphere`?"), "{msg}");
    }
}
