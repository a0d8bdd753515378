//! `--schedule "22:00-07:00"`: the times of day the peer may crunch, in
//! local time; a window whose end is before its start runs across
//! midnight. Pure: the minute of the day is passed in.

/// Minutes in a day.
const DAY: u32 = 24 * 60;

/// One or more windows, comma-separated, e.g. `22:00-07:00,12:00-13:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// (start, end) in minutes after midnight; end may be before start.
    windows: Vec<(u32, u32)>,
}

/// Why a `--schedule` value was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSchedule {
    /// A start or end that is not `HH:MM` within the day.
    #[error("{0:?} is not a time of day (HH:MM)")]
    NotATime(String),
    /// A comma-separated part without a `-`.
    #[error("{0:?} is not a window (HH:MM-HH:MM)")]
    NotAWindow(String),
    /// A window that starts where it ends, which would be ambiguous
    /// between nothing and the whole day.
    #[error("window {0:?} is empty; 00:00-24:00 is the whole day")]
    EmptyWindow(String),
}

fn minute(s: &str) -> Result<u32, BadSchedule> {
    let bad = || BadSchedule::NotATime(s.to_string());
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl std::str::FromStr for Schedule {
    type Err = BadSchedule;
    fn from_str(s: &str) -> Result<Self, BadSchedule> {
        let mut windows = Vec::new();
        for w in s.split(',') {
            let (a, b) = w
                .split_once('-')
                .ok_or_else(|| BadSchedule::NotAWindow(w.to_string()))?;
            let (a, b) = (minute(a)?, minute(b)?);
            if a == b {
                return Err(BadSchedule::EmptyWindow(w.to_string()));
            }
            windows.push((a, b));
        }
        Ok(Schedule { windows })
    }
}

impl Schedule {
    /// True if crunching is allowed at `minute` after local midnight.
    pub fn allows(&self, minute: u32) -> bool {
        let m = minute % DAY;
        self.windows.iter().any(|&(a, b)| {
            if a < b {
                (a..b).contains(&m)
            } else {
                m >= a || m < b
            }
        })
    }
}

/// The local minute of the day now (UTC if the local zone is unknown).
/// The C library's `localtime_r`, which reads the zone as the rest of the
/// system does (`TZ`, `/etc/localtime`).
#[allow(unsafe_code)]
pub fn local_minute_now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain old data that we own and localtime_r fills; it
    // is the thread-safe form of localtime and keeps no pointer to either.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return ((secs / 60) % DAY as u64) as u32;
    }
    tm.tm_hour as u32 * 60 + tm.tm_min as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

    #[test]
    fn a_window_across_midnight() {
        let s: Schedule = "22:00-07:00".parse().unwrap();
        assert!(s.allows(at(22, 0)));
        assert!(s.allows(at(23, 59)));
        assert!(s.allows(at(0, 0)));
        assert!(s.allows(at(6, 59)));
        assert!(!s.allows(at(7, 0)));
        assert!(!s.allows(at(12, 0)));
        assert!(!s.allows(at(21, 59)));
    }

    #[test]
    fn several_windows_and_the_whole_day() {
        let s: Schedule = "09:00-12:00, 13:30-17:00".parse().unwrap();
        assert!(s.allows(at(9, 0)) && s.allows(at(11, 59)) && s.allows(at(13, 30)));
        assert!(!s.allows(at(12, 0)) && !s.allows(at(13, 29)) && !s.allows(at(17, 0)));
        let all: Schedule = "00:00-24:00".parse().unwrap();
        assert!((0..DAY).all(|m| all.allows(m)));
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in [
            "",
            "22:00",
            "25:00-01:00",
            "10:60-11:00",
            "8-9",
            "10:00-10:00",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_local_minute_is_a_minute_of_the_day() {
        assert!(local_minute_now() < DAY);
    }
}
