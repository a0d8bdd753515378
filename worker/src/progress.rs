//! Progress in words a person reads at a glance: ETAs (`3m05s`, `2h04m`)
//! and rates (`66/s`, `1.2k/s`), shared by `worker status`, the peer's
//! logs, `worker local`'s bar and `worker bench`.

/// A duration in seconds as its two largest units: `45s`, `3m05s`,
/// `2h04m`, `3d07h`; `?` when unknown (not finite or negative).
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A rate per second with at most three significant digits and a k/M
/// suffix: `0.25/s`, `66/s`, `1.2k/s`, `3.4M/s`.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return "?/s".into();
    }
    let (v, unit) = if per_sec >= 1e6 {
        (per_sec / 1e6, "M")
    } else if per_sec >= 1e3 {
        (per_sec / 1e3, "k")
    } else {
        (per_sec, "")
    };
    if v >= 10.0 || (v.fract() == 0.0 && unit.is_empty()) {
        format!("{v:.0}{unit}/s")
    } else if v >= 1.0 {
        format!("{v:.1}{unit}/s")
    } else {
        format!("{v:.2}{unit}/s")
    }
}

/// Seconds left for `left` more items at `per_sec`; `None` before any
/// rate is known.
pub fn eta_secs(left: f64, per_sec: f64) -> Option<f64> {
    (per_sec > 0.0 && per_sec.is_finite()).then(|| left.max(0.0) / per_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_two_units() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(2.0 * 3600.0 + 4.0 * 60.0 + 59.0), "2h04m");
        assert_eq!(duration(3.0 * 86_400.0 + 7.0 * 3600.0), "3d07h");
        assert_eq!(duration(f64::INFINITY), "?");
        assert_eq!(duration(-1.0), "?");
    }

    #[test]
    fn rates_are_short() {
        assert_eq!(rate(65.9941), "66/s");
        assert_eq!(rate(2.0), "2/s");
        assert_eq!(rate(2.345), "2.3/s");
        assert_eq!(rate(0.25), "0.25/s");
        assert_eq!(rate(1234.0), "1.2k/s");
        assert_eq!(rate(56_789.0), "57k/s");
        assert_eq!(rate(3_400_000.0), "3.4M/s");
        assert_eq!(rate(f64::NAN), "?/s");
    }

    #[test]
    fn eta_needs_a_rate() {
        assert_eq!(eta_secs(100.0, 0.0), None);
        assert_eq!(eta_secs(100.0, 4.0), Some(25.0));
        assert_eq!(eta_secs(-3.0, 4.0), Some(0.0));
    }
}
