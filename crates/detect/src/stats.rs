//! Small numeric helpers every detector shares: the normal CDF (to turn a deviation into a
//! 0..1 score) and a guard for non-finite input.

/// The standard normal cumulative distribution function, Φ(x).
///
/// Uses the complementary error function with W. J. Cody's rational approximation via
/// `erfc` (absolute error below 1.2e-7), enough for scoring.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The upper tail 1 − Φ(x), accurate far into the tail (no cancellation).
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, |ε| < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The score (0..1) of a deviation of `sigmas` standard deviations in either direction:
/// the probability mass of a normal distribution closer to the mean than the point,
/// `2Φ(|z|) − 1` — 3σ scores 0.9973. Beyond 6σ that probability is indistinguishable
/// from 1 for ranking, so the remaining gap (2·10⁻⁹) shrinks as `1/(1 + ln(|z|/6))`:
/// scores keep increasing with the deviation and stay distinct in f64 even for the huge
/// z of a series whose spread is ~0 (a threshold can still separate 10σ from 10⁹σ).
pub fn sigma_score(sigmas: f64) -> f64 {
    if sigmas.is_nan() {
        return 0.0;
    }
    let z = sigmas.abs();
    if z <= 6.0 {
        (1.0 - 2.0 * normal_sf(z)).clamp(0.0, 1.0)
    } else {
        1.0 - 2.0 * normal_sf(6.0) / (1.0 + (z / 6.0).ln())
    }
}

/// The natural log of the upper tail 1 − Φ(x), usable for large x where the tail
/// underflows (asymptotic expansion beyond 8σ).
pub fn log_normal_sf(x: f64) -> f64 {
    if x < 8.0 {
        normal_sf(x).max(f64::MIN_POSITIVE).ln()
    } else {
        // Mills ratio: 1 − Φ(x) ≈ φ(x)/x · (1 − 1/x²)
        -0.5 * x * x - x.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln() + (1.0 - 1.0 / (x * x)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975_002).abs() < 1e-6);
        assert!((normal_cdf(-3.0) - 0.001_349_9).abs() < 1e-6);
        assert!((sigma_score(3.0) - 0.9973).abs() < 1e-4);
        assert_eq!(sigma_score(f64::NAN), 0.0);
        assert!(sigma_score(100.0) > sigma_score(10.0) && sigma_score(10.0) > sigma_score(6.0));
        assert!(sigma_score(f64::INFINITY) == 1.0 && sigma_score(1e300) > sigma_score(1e9));
        assert!((log_normal_sf(9.0) - normal_sf(9.0).ln()).abs() < 0.05);
    }
}
