//! Verdicts: the Wilson lower bound, burn rates and the hysteresis state machine.
//!
//! An objective with allowance `a` (0.05 for p95, 0.01 for `error_rate < 1%`) **fails** when the
//! window holds at least `min_samples` requests and the one-sided Wilson lower bound of the miss
//! share exceeds `a`; with fewer samples its status is `insufficient`. The burn rate is the miss
//! share divided by `a`.
//!
//! States move `ok → warning` when either burn exceeds 1, `→ breached` after `breach_evals`
//! consecutive evaluations that fail with evidence while the short window still burns above
//! `breach_burn`, and `breached → ok` only after `recover_evals` evaluations with both burns
//! below `recover_burn`.

/// A budget's or objective's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum State {
    /// Within budget, or not enough evidence of a problem.
    #[default]
    Ok,
    /// Burning faster than allowed, without (yet) evidence for a breach.
    Warning,
    /// Failed with evidence and still burning.
    Breached,
}

impl State {
    /// `ok`, `warning` or `breached`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Breached => "breached",
        }
    }
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Warning,
            2 => Self::Breached,
            _ => Self::Ok,
        }
    }
}

/// The verdict on one objective over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Status {
    /// No evidence that the objective is missed.
    Pass,
    /// Missed, with evidence.
    Fail,
    /// Fewer samples than needed for a verdict.
    Insufficient,
}

/// The standard normal quantile (Acklam's approximation, relative error < 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// The one-sided Wilson score lower bound of `bad / n` at `confidence` (0.5 gives `bad / n`).
pub(crate) fn wilson_lower(bad: u64, n: u64, confidence: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let z = normal_quantile(confidence).max(0.0);
    let n = n as f64;
    let p = bad as f64 / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

/// Burn rate: the miss share over the allowance (0 without samples).
pub(crate) fn burn(bad: u64, n: u64, allowance: f64) -> f64 {
    if n == 0 {
        0.0
    } else {
        bad as f64 / n as f64 / allowance
    }
}

/// Thresholds of the state machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hysteresis {
    pub(crate) breach_burn: f64,
    pub(crate) recover_burn: f64,
    pub(crate) breach_evals: u32,
    pub(crate) recover_evals: u32,
}

/// One objective's state machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Machine {
    pub(crate) state: State,
    fail_streak: u32,
    calm_streak: u32,
}

impl Machine {
    /// One evaluation step; returns the new state when it changed.
    pub(crate) fn step(
        &mut self,
        status: Status,
        burn_short: f64,
        burn_long: f64,
        h: &Hysteresis,
    ) -> Option<State> {
        let before = self.state;
        let hot = burn_short > 1.0 || burn_long > 1.0;
        match self.state {
            State::Ok | State::Warning => {
                if status == Status::Fail && burn_short > h.breach_burn {
                    self.fail_streak += 1;
                } else {
                    self.fail_streak = 0;
                }
                if self.fail_streak >= h.breach_evals {
                    self.state = State::Breached;
                    self.calm_streak = 0;
                } else {
                    self.state = if hot { State::Warning } else { State::Ok };
                }
            }
            State::Breached => {
                if burn_short < h.recover_burn && burn_long < h.recover_burn {
                    self.calm_streak += 1;
                } else {
                    self.calm_streak = 0;
                }
                if self.calm_streak >= h.recover_evals {
                    self.state = State::Ok;
                    self.fail_streak = 0;
                }
            }
        }
        (self.state != before).then_some(self.state)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wilson_needs_evidence() {
        // 8 slow requests of 100 is 8 %, but with 95 % confidence it may still be under 5 %.
        assert!((super::wilson_lower(8, 100, 0.95) - 0.0457).abs() < 5e-4);
        assert!(super::wilson_lower(40, 2000, 0.95) > 0.01);
    }

    use super::*;

    #[test]
    fn quantile_and_wilson_match_known_values() {
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        assert!((normal_quantile(0.999) - 3.090_232_3).abs() < 1e-6);
        assert!(normal_quantile(0.5).abs() < 1e-12);
        // The design note's table (one-sided 95 %).
        assert!((wilson_lower(4, 200, 0.95) - 0.0090).abs() < 5e-4);
        assert!((wilson_lower(40, 2000, 0.95) - 0.0155).abs() < 5e-4);
        assert!((wilson_lower(8, 100, 0.95) - 0.0457).abs() < 5e-4);
        assert_eq!(wilson_lower(7, 100, 0.5), 0.07);
    }

    #[test]
    fn hysteresis_needs_streaks_both_ways() {
        let h = Hysteresis {
            breach_burn: 1.0,
            recover_burn: 0.8,
            breach_evals: 2,
            recover_evals: 3,
        };
        let mut m = Machine::default();
        assert_eq!(m.step(Status::Pass, 2.0, 0.5, &h), Some(State::Warning));
        assert_eq!(
            m.step(Status::Fail, 2.0, 2.0, &h),
            None,
            "one failing evaluation is not enough"
        );
        assert_eq!(m.step(Status::Fail, 2.0, 2.0, &h), Some(State::Breached));
        // Recovering needs three calm evaluations in a row; a relapse restarts the count.
        assert_eq!(m.step(Status::Pass, 0.1, 0.5, &h), None);
        assert_eq!(m.step(Status::Pass, 0.1, 0.5, &h), None);
        assert_eq!(
            m.step(Status::Pass, 0.9, 0.5, &h),
            None,
            "0.9 is under 1 but above recover_burn"
        );
        assert_eq!(m.step(Status::Pass, 0.1, 0.5, &h), None);
        assert_eq!(m.step(Status::Pass, 0.1, 0.5, &h), None);
        assert_eq!(m.step(Status::Pass, 0.1, 0.5, &h), Some(State::Ok));
        // Failing with evidence but the short window no longer burning: no breach.
        assert_eq!(m.step(Status::Fail, 0.5, 1.5, &h), Some(State::Warning));
        assert_eq!(m.step(Status::Fail, 0.5, 1.5, &h), None);
        assert_eq!(m.state, State::Warning);
    }
}
