"""Second, independent reference for configs/wellmixed_fenton.toml (one well-mixed voxel).

Solves the same seven ODEs as tests/wellmixed.rs (Fe2, Fe3, H2O2, GSH, GSSG, H, HCO3; OH
quasi-steady, OH = P/L; buffered H+ per docs/scientific-model.md R23/R23b) with scipy's implicit Radau
method (rtol 1e-10, atol 1e-14), restarting at every output time so each printed value is a
step end point, not an interpolant. Writes wellmixed_fenton_scipy.csv next to this file with
the columns of the binary's well_mixed.csv:

    time_s,Fe2,Fe3,H2O2,GSH,GSSG,H,HCO3,OH,pH      (mM; pH = -log10(H*1e-3))

Regenerate (from the repository root; needs numpy and scipy, checked with scipy 1.17.1):

    python3 tests/reference/wellmixed_fenton_scipy.py

tests/wellmixed.rs asserts that its RK4 reference agrees with this CSV to 1e-6 relative.
"""

import math
import os

import numpy as np
from scipy.integrate import solve_ivp

# [parameters] of configs/wellmixed_fenton.toml
K_FENTON = 0.07
K_FE3_H2O2 = 2e-6
K_OH_H2O2 = 2.7e4
K_OH_GSH = 1e7
K_OH_FE2 = 3.2e5
K_BIO = 5e8
K_FE3_GSH = 1.0
K_GSH_H2O2 = 9e-4
K_CAT = 0.5
K_GPX = 0.5
K_G = 1.0
K_GR = 0.05
K_SYN = 1e-4
GSH_SET = 5.0
H2O2_SET = 0.05
BETA_NB = 20.0
LN10 = math.log(10.0)

Y0 = [0.5, 0.0, 0.05, 5.0, 0.1, 1.58e-4, 20.0]  # Fe2 Fe3 H2O2 GSH GSSG H HCO3
END_S, OUTPUT_S = 3600.0, 60.0


def oh_qss(fe2, h2o2, gsh):
    """OH = P/L: production by R1 over the first-order loss of R3-R6."""
    return K_FENTON * fe2 * h2o2 / (K_OH_H2O2 * h2o2 + K_OH_GSH * gsh + K_OH_FE2 * fe2 + K_BIO)


def rhs(_t, y):
    fe2, fe3, h2o2, gsh, gssg, h, hco3 = y
    oh = oh_qss(fe2, h2o2, gsh)
    v1 = K_FENTON * fe2 * h2o2  # fenton
    v2 = K_FE3_H2O2 * fe3 * h2o2  # fenton_back (+H)
    v3 = K_OH_H2O2 * oh * h2o2  # oh_h2o2
    v4 = K_OH_GSH * oh * gsh  # oh_gsh -> 0.5 GSSG
    v5 = K_OH_FE2 * oh * fe2  # oh_fe2
    v9 = K_FE3_GSH * fe3 * gsh  # fe3_gsh -> Fe2 + 0.5 GSSG + H
    v13 = K_GSH_H2O2 * gsh * h2o2  # 2 GSH + H2O2 -> GSSG
    v14 = K_CAT * h2o2  # catalase
    v15 = K_GPX * h2o2 * gsh / (K_G + gsh)  # gpx: H2O2 + 2 GSH -> GSSG
    v16 = K_GR * gssg  # gr: GSSG -> 2 GSH
    v17 = K_SYN * max(0.0, GSH_SET - gsh)  # synthesis
    vp = (K_CAT + K_GPX * GSH_SET / (K_G + GSH_SET)) * H2O2_SET  # supply
    s_h = v2 + v9
    beta = BETA_NB + 2.303 * hco3
    return [
        -v1 + v2 - v5 + v9,
        v1 - v2 + v5 - v9,
        -v1 - v2 - v3 - v13 - v14 - v15 + vp,
        -v4 - v9 - 2.0 * v13 - 2.0 * v15 + 2.0 * v16 + v17,
        0.5 * v4 + 0.5 * v9 + v13 + v15 - v16,
        LN10 * h / beta * s_h,
        -s_h * 2.303 * hco3 / beta,
    ]


def main():
    n_out = int(round(END_S / OUTPUT_S))
    y = np.array(Y0, dtype=float)
    rows = []

    def row(t, y):
        fe2, fe3, h2o2, gsh, gssg, h, hco3 = y
        return [t, fe2, fe3, h2o2, gsh, gssg, h, hco3, oh_qss(fe2, h2o2, gsh), -math.log10(h * 1e-3)]

    rows.append(row(0.0, y))
    for i in range(n_out):
        t0, t1 = i * OUTPUT_S, (i + 1) * OUTPUT_S
        sol = solve_ivp(rhs, (t0, t1), y, method="Radau", rtol=1e-10, atol=1e-14)
        if not sol.success:
            raise SystemExit(f"Radau failed on [{t0}, {t1}]: {sol.message}")
        y = sol.y[:, -1]
        rows.append(row(t1, y))

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wellmixed_fenton_scipy.csv")
    with open(path, "w") as f:
        f.write("time_s,Fe2,Fe3,H2O2,GSH,GSSG,H,HCO3,OH,pH\n")
        for r in rows:
            f.write(",".join(repr(float(v)) for v in r) + "\n")
    print(f"wrote {path}: {len(rows)} rows; final " + ", ".join(f"{v:.6e}" for v in rows[-1]))


if __name__ == "__main__":
    main()
