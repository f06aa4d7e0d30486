//! `[chemistry]`: the settings of the reaction integrator (tolerances, sub-step cap) →
//! [`ChemistrySpec`].

use serde::Deserialize;

use super::checks::{finite, positive};
use super::error::Error;
use super::scenario::ChemistrySpec;

/// `[chemistry]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChemistry {
    pub rtol: Option<f64>,
    pub atol_mm: Option<f64>,
    pub max_substeps: Option<i64>,
}

/// `[chemistry]`: the integrator defaults, with the keys given.
pub(super) fn validate(c: Option<&RawChemistry>) -> Result<ChemistrySpec, Error> {
    let mut spec = ChemistrySpec::default();
    let Some(c) = c else {
        return Ok(spec);
    };
    if let Some(rtol) = c.rtol {
        if !(finite(rtol, "chemistry.rtol")? > 0.0 && rtol <= 0.1) {
            return Err(Error::invalid("chemistry.rtol", "must be in (0, 0.1]")
                .found(rtol)
                .fix("use a relative tolerance such as 1e-4 (smaller = more accurate, more sub-steps)"));
        }
        spec.rtol = rtol;
    }
    if let Some(atol) = c.atol_mm {
        spec.atol_mm = positive(
            atol,
            "chemistry.atol_mm",
            "set a positive absolute tolerance in mM, e.g. 1e-12 (below the smallest concentration that matters)",
        )?;
    }
    if let Some(n) = c.max_substeps {
        spec.max_substeps = u32::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
            Error::invalid(
                "chemistry.max_substeps",
                format!("must be in 1..={}", u32::MAX),
            )
            .found(n)
            .fix("allow enough sub-steps per voxel and reaction step, e.g. 20000")
        })?;
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    /// (chem) The example loads: indices in species order, fractional and integer
    /// coefficients, empty sides, buffer, integrator settings.
    #[test]
    fn wellmixed_fenton_example_loads() {
        let s = load_str(FENTON, FILE, &[]).expect("the Fenton example loads");
        assert_eq!(s.grid.shape(), [1, 1, 1]);
        let names: Vec<&str> = s.species.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["Fe2", "Fe3", "H2O2", "GSH", "GSSG", "H", "HCO3", "OH"]
        );
        let qs: Vec<bool> = s.species.iter().map(|s| s.quasi_steady).collect();
        assert_eq!(qs, [false, false, false, false, false, false, false, true]);
        let (fe2, fe3, h2o2, gsh, gssg, h, hco3, oh) = (0, 1, 2, 3, 4, 5, 6, 7);

        assert_eq!(s.parameters.len(), 15);
        assert_eq!(s.parameters[0].name, "k_fenton", "file order");
        let k = parameter(&s, "k_fenton");
        assert_eq!(k.value_by_tissue, [0.07]);
        assert_eq!(k.unit, "1/(mM*s)");
        assert!(k.source.starts_with("R1, 63"));
        assert!(k.is_uniform());
        assert_eq!(parameter(&s, "K_G").unit, "mM");
        assert_eq!(parameter(&s, "k_bio").value_by_tissue, [5e8]);

        assert_eq!(s.reactions.len(), 13);
        assert_eq!(s.reactions[0].name, "fenton", "file order");
        let r = reaction(&s, "fenton");
        assert_eq!(r.equation, "Fe2 + H2O2 -> Fe3 + OH");
        assert_eq!(r.rate, "k_fenton * Fe2 * H2O2");
        assert_eq!(r.reactants, [(fe2, 1.0), (h2o2, 1.0)]);
        assert_eq!(r.products, [(fe3, 1.0), (oh, 1.0)]);
        assert_eq!(r.tissues, None);
        assert!(!r.viable_only);
        assert_eq!(reaction(&s, "oh_gsh").reactants, [(oh, 1.0), (gsh, 1.0)]);
        assert_eq!(reaction(&s, "oh_gsh").products, [(gssg, 0.5)]);
        assert_eq!(
            reaction(&s, "fe3_gsh").products,
            [(fe2, 1.0), (gssg, 0.5), (h, 1.0)]
        );
        assert_eq!(
            reaction(&s, "gsh_h2o2").reactants,
            [(gsh, 2.0), (h2o2, 1.0)]
        );
        assert_eq!(reaction(&s, "gsh_h2o2").products, [(gssg, 1.0)]);
        assert_eq!(reaction(&s, "gr").products, [(gsh, 2.0)]);
        let sink = reaction(&s, "oh_h2o2");
        assert_eq!(sink.reactants, [(oh, 1.0), (h2o2, 1.0)]);
        assert!(sink.products.is_empty());
        let source = reaction(&s, "gsh_synthesis");
        assert!(source.reactants.is_empty());
        assert_eq!(source.products, [(gsh, 1.0)]);

        let b = s.buffer.as_ref().expect("buffer");
        assert_eq!(b.proton, h);
        assert_eq!(b.beta_nb_mm_per_ph, 20.0);
        assert_eq!(b.bicarbonate, Some(hco3));
        assert_eq!(
            s.chemistry,
            ChemistrySpec {
                rtol: 1e-3,
                atol_mm: 1e-6,
                max_substeps: 20_000
            }
        );
    }

    /// Without chemistry sections a scenario has no network and default integrator settings.
    #[test]
    fn no_chemistry_sections_means_no_network() {
        let s = load_str(BASE, FILE, &[]).expect("default loads");
        assert!(s.parameters.is_empty() && s.reactions.is_empty() && s.buffer.is_none());
        assert_eq!(s.chemistry, ChemistrySpec::default());
        assert!(s.species.iter().all(|s| !s.quasi_steady));
    }

    /// (chem: parse_unit, parse_equation) Integrator settings: defaults and bounds.
    #[test]
    fn chemistry_settings() {
        let cut = FENTON.split("[chemistry]").next().expect("split");
        let s = load_str(cut, FILE, &[]).expect("loads without [chemistry]");
        assert_eq!(s.chemistry, ChemistrySpec::default());
        let s = load_str(FENTON, FILE, &["chemistry.rtol=1e-6".to_string()]).expect("loads");
        assert_eq!(s.chemistry.rtol, 1e-6);
        for (set, field) in [
            ("chemistry.rtol=0", "chemistry.rtol"),
            ("chemistry.rtol=0.5", "chemistry.rtol"),
            ("chemistry.atol_mm=0", "chemistry.atol_mm"),
            ("chemistry.atol_mm=-1e-9", "chemistry.atol_mm"),
            ("chemistry.max_substeps=0", "chemistry.max_substeps"),
            (
                "chemistry.max_substeps=99999999999",
                "chemistry.max_substeps",
            ),
        ] {
            let e = load_err(FENTON, &[set]);
            assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
            let msg = check(&e, field);
            assert!(msg.contains(&format!("(--set {set})")), "{msg}");
        }
        let e = load_err(FENTON, &["chemistry.max_substeps=1.5"]);
        assert_eq!(e.kind, ErrorKind::WrongType);
    }
}
