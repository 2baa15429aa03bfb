"""M-CoG ~ technique + task family with a random intercept per model (docs/protocol.md §8.5).

The unit is one seed-aggregated M-CoG per (technique, data set, model). The model is fitted
with :func:`statsmodels.formula.api.mixedlm` (REML, random intercept per model). Treatment
coding uses the first technique in the canonical order (swapping) and the alphabetically first
family as references. Terms with a single level are dropped from the formula.

Fallback (said in ``note``): with fewer than 3 models, or when the mixed fit fails, does not
converge or is singular (random-intercept variance estimated at ~0), the same fixed effects
are fitted by OLS: with cluster-robust standard errors by model when there are 3 or more models;
with a fixed intercept per model and HC3 errors for 2 models (a cluster-robust covariance from
2 clusters has rank 1 and gives zero standard errors); with HC3 errors for a single model.

Rows (analysis ``mcog_model``): one per fixed-effect coefficient (``Intercept`` is outside the
Holm family), ``model variance`` for the random intercept when the mixed model is used, and a
joint Wald chi-square test (``estimate`` = chi-square statistic) per factor with 3 or more levels.
Analysis ``mcog_norm_model``: the same model of the depth-normalised M-CoG (``mcog_norm``). The
random intercept absorbs a model's shift but not its scale: raw M-CoGs of a 30-block model spread
five times as far as those of a 6-block one, so only the normalised fit weighs models alike.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from memloc.stats.agreement import ordered
from memloc.stats.mcog import seed_aggregated
from memloc.stats.tidy import row

ANALYSIS = "mcog_model"
NORM_ANALYSIS = "mcog_norm_model"


def model_frame(mcog: pd.DataFrame, families: Mapping[str, str] | None = None, variant: str = "noisy",
                value: str = "mcog") -> pd.DataFrame:
    """Seed-aggregated ``value`` (as column ``mcog``) with ``family`` from the config mapping (default "other")."""
    df = seed_aggregated(mcog, variant)[["technique", "dataset", "model", value]].rename(columns={value: "mcog"})
    df["family"] = [(families or {}).get(d, "other") for d in df["dataset"]]
    return df[np.isfinite(df["mcog"].astype(float))].reset_index(drop=True)


def _fe_rows(analysis, params, bse, pvalues, conf, n, note) -> list[dict]:
    rows = []
    for term in params.index:
        rows.append(
            row(analysis, term, params[term], conf.loc[term, 0], conf.loc[term, 1], pvalues[term], n, note,
                adjust=term != "Intercept")
        )
    return rows


def _joint_rows(analysis: str, params: pd.Series, cov: pd.DataFrame, factors: list[str], n: int, note: str) -> list[dict]:
    rows = []
    for factor in factors:
        names = [t for t in params.index if t.startswith(f"{factor}[")]
        if len(names) < 2:
            continue
        b = params[names].to_numpy(float)
        V = cov.loc[names, names].to_numpy(float)
        try:
            chi2 = float(b @ np.linalg.solve(V, b))
            p = float(stats.chi2.sf(chi2, len(names)))
        except np.linalg.LinAlgError:
            chi2, p = np.nan, np.nan
        rows.append(row(analysis, f"{factor} (joint Wald)", chi2, p_value=p, n=n,
                        note=f"{note}; chi-square statistic, df = {len(names)}", adjust=False))
    return rows


def mcog_model_rows(
    mcog: pd.DataFrame, families: Mapping[str, str] | None = None, variant: str = "noisy", confidence: float = 0.95,
    value: str = "mcog", analysis: str = ANALYSIS,
) -> list[dict]:
    """Rows of ``analysis``: the model of the module docstring fitted to ``value`` (``mcog`` or ``mcog_norm``)."""
    df = model_frame(mcog, families, variant, value)
    n = len(df)
    if n == 0:
        return [row(analysis, "(none)", note="no finite M-CoG values")]
    techniques = ordered(df["technique"].unique())
    fams = sorted(df["family"].unique())
    df["technique"] = pd.Categorical(df["technique"], categories=techniques)
    df["family"] = pd.Categorical(df["family"], categories=fams)
    factors = [f for f, levels in (("technique", techniques), ("family", fams)) if len(levels) >= 2]
    formula = "mcog ~ " + (" + ".join(factors) if factors else "1")
    n_params = 1 + (len(techniques) - 1 if "technique" in factors else 0) + (len(fams) - 1 if "family" in factors else 0)
    n_models = df["model"].nunique()
    dropped = [f for f in ("technique", "family") if f not in factors]
    dropped_note = f"; single level, dropped: {', '.join(dropped)}" if dropped else ""
    if n <= n_params:
        return [row(analysis, "(none)", n=n, note=f"{n} observations for {n_params} fixed effects: not fitted{dropped_note}")]

    import statsmodels.formula.api as smf

    reason = ""
    if n_models >= 3:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = smf.mixedlm(formula, df, groups=df["model"]).fit(reml=True)
            var_re = float(np.asarray(fit.cov_re)[0, 0])
            fe = fit.fe_params
            bse = fit.bse_fe
            converged = bool(getattr(fit, "converged", True))
            bad_warning = any("singular" in str(w.message).lower() or "boundary" in str(w.message).lower() for w in caught)
            if not converged:
                reason = "mixed model did not converge"
            elif not np.all(np.isfinite(bse)) or not np.isfinite(var_re):
                reason = "mixed model gave non-finite standard errors"
            elif var_re <= 1e-8 * max(float(fit.scale), 1e-12) or bad_warning:
                reason = "mixed model singular (random-intercept variance ~ 0)"
            else:
                note = f"mixedlm (REML), random intercept per model ({n_models} models){dropped_note}"
                z = fe / bse
                p = pd.Series(2 * stats.norm.sf(np.abs(z)), index=fe.index)
                q = stats.norm.ppf(0.5 + confidence / 2)
                conf = pd.DataFrame({0: fe - q * bse, 1: fe + q * bse})
                rows = _fe_rows(analysis, fe, bse, p, conf, n, note)
                rows.append(row(analysis, "model variance (random intercept)", var_re, n=n, note=note, adjust=False))
                k = len(fe)
                cov = pd.DataFrame(np.asarray(fit.cov_params())[:k, :k], index=fe.index, columns=fe.index)
                return rows + _joint_rows(analysis, fe, cov, factors, n, note)
        except Exception as err:  # noqa: BLE001 - any failure of the optimiser means: fall back
            reason = f"mixed model failed ({type(err).__name__}: {err})"
    else:
        reason = f"{n_models} model{'s' if n_models != 1 else ''} (< 3 groups)"

    ols_formula = formula
    if n_models >= 3:
        cov_type, kwds, how = "cluster", {"groups": pd.factorize(df["model"])[0]}, "cluster-robust SE by model"
    elif n_models == 2:
        # A cluster-robust covariance from 2 clusters has rank 1: it returns zero standard errors
        # and infinite Wald statistics. The two model intercepts become a fixed effect instead.
        ols_formula = formula.replace("~ 1", "~ model") if not factors else formula + " + model"
        cov_type, kwds, how = (
            "HC3", {}, "HC3 SE and a fixed intercept per model (2 models: too few clusters for cluster-robust SE)"
        )
    else:
        cov_type, kwds, how = "HC3", {}, "HC3 SE (one model, one cluster)"
    note = f"fallback: OLS with {how}; reason: {reason}{dropped_note}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.ols(ols_formula, df).fit(cov_type=cov_type, cov_kwds=kwds)
            conf = fit.conf_int(alpha=1 - confidence)
    except Exception as err:  # noqa: BLE001
        return [row(analysis, "(none)", n=n, note=f"{note}; OLS failed ({type(err).__name__}: {err})")]
    if not np.isfinite(fit.df_resid) or fit.df_resid < 1:
        return [row(analysis, "(none)", n=n, note=f"{note}; no residual degrees of freedom: not fitted")]
    keep = [t for t in fit.params.index if not t.startswith("model[")]
    rows = _fe_rows(analysis, fit.params[keep], fit.bse[keep], fit.pvalues[keep], conf.loc[keep], n, note)
    cov = fit.cov_params()
    return rows + _joint_rows(analysis, fit.params[keep], cov, factors, n, note)
