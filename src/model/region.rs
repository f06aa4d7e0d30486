//! Geometry of regions: which voxel centres a [`Region`] covers.

use crate::config::Region;
use glam::DVec3;

impl Region {
    /// Whether the point `p_um` (µm, domain coordinates) lies inside the region. A Gaussian
    /// covers |p − c| ≤ 2σ when used as a solid region (tissue, vessel).
    pub fn contains(&self, p_um: DVec3) -> bool {
        match *self {
            Region::Sphere {
                centre_um,
                radius_um,
            } => p_um.distance_squared(centre_um) <= radius_um * radius_um,
            Region::Box { min_um, max_um } => p_um.cmpge(min_um).all() && p_um.cmple(max_um).all(),
            Region::Cylinder {
                start_um,
                end_um,
                radius_um,
            } => {
                let axis = end_um - start_um;
                let t = (p_um - start_um).dot(axis) / axis.length_squared();
                (0.0..=1.0).contains(&t)
                    && p_um.distance_squared(start_um + t * axis) <= radius_um * radius_um
            }
            Region::Capsule {
                start_um,
                end_um,
                radius_um,
            } => {
                let axis = end_um - start_um;
                let t = ((p_um - start_um).dot(axis) / axis.length_squared()).clamp(0.0, 1.0);
                p_um.distance_squared(start_um + t * axis) <= radius_um * radius_um
            }
            Region::Gaussian {
                centre_um,
                sigma_um,
            } => p_um.distance(centre_um) <= 2.0 * sigma_um,
        }
    }

    /// Initial-value contribution at `p_um` of a region with value `value_mm`: `Set(v)` for
    /// solid shapes inside, `Add(v·exp(−r²/2σ²))` for a Gaussian, `None` outside.
    pub fn initial_value(&self, p_um: DVec3, value_mm: f64) -> Option<InitialValue> {
        match *self {
            Region::Gaussian {
                centre_um,
                sigma_um,
            } => {
                let r2 = p_um.distance_squared(centre_um);
                Some(InitialValue::Add(
                    value_mm * (-r2 / (2.0 * sigma_um * sigma_um)).exp(),
                ))
            }
            _ => self.contains(p_um).then_some(InitialValue::Set(value_mm)),
        }
    }
}

/// How a region changes an initial value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InitialValue {
    Set(f64),
    Add(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_contain_their_centres_and_not_far_points() {
        let c = DVec3::splat(50.0);
        let far = DVec3::splat(1000.0);
        let regions = [
            Region::Sphere {
                centre_um: c,
                radius_um: 10.0,
            },
            Region::Box {
                min_um: c - 5.0,
                max_um: c + 5.0,
            },
            Region::Cylinder {
                start_um: c - DVec3::X * 20.0,
                end_um: c + DVec3::X * 20.0,
                radius_um: 3.0,
            },
            Region::Capsule {
                start_um: c - DVec3::X * 20.0,
                end_um: c + DVec3::X * 20.0,
                radius_um: 3.0,
            },
            Region::Gaussian {
                centre_um: c,
                sigma_um: 4.0,
            },
        ];
        for r in regions {
            assert!(r.contains(c), "{r:?}");
            assert!(!r.contains(far), "{r:?}");
        }
        // Cylinder has flat ends, capsule round ones.
        let beyond_end = c + DVec3::X * 22.0;
        assert!(!regions[2].contains(beyond_end));
        assert!(regions[3].contains(beyond_end));
    }

    #[test]
    fn gaussian_adds_peak_times_kernel() {
        let g = Region::Gaussian {
            centre_um: DVec3::ZERO,
            sigma_um: 2.0,
        };
        let v = g.initial_value(DVec3::new(2.0, 0.0, 0.0), 3.0);
        assert_eq!(v, Some(InitialValue::Add(3.0 * (-0.5f64).exp())));
    }
}
