//! `--pause-when-busy`: how much CPU the other processes use, from
//! `/proc/stat` (the whole machine) minus `/proc/self/stat` (this
//! process), both in clock ticks. Parsing and arithmetic are pure.

/// CPU ticks at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuSample {
    /// Ticks all CPUs spent busy (not idle, not waiting for I/O).
    pub busy: u64,
    /// Ticks all CPUs spent in total.
    pub total: u64,
    /// Ticks this process spent (user + system).
    pub ours: u64,
}

/// (busy, total) from the first line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.map_while(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// utime + stime from `/proc/PID/stat` (fields 14 and 15; the command
/// name in parentheses may hold spaces, so fields count from its `)`).
pub fn parse_self_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is index 11.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Reads a sample now; `None` where `/proc` is missing.
pub fn sample() -> Option<CpuSample> {
    let (busy, total) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let ours = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(CpuSample { busy, total, ours })
}

/// Cores' worth of CPU that other processes used between two samples.
pub fn others_cores(a: CpuSample, b: CpuSample, cpus: usize) -> f64 {
    let total = b.total.saturating_sub(a.total);
    if total == 0 {
        return 0.0;
    }
    let others = b
        .busy
        .saturating_sub(a.busy)
        .saturating_sub(b.ours.saturating_sub(a.ours));
    others as f64 / total as f64 * cpus as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "cpu  2085385 102661 130697 331509 3050 0 1780 2549 0 0\ncpu0 1 2 3 4\n";
        let (busy, total) = parse_proc_stat(stat).unwrap();
        assert_eq!(
            total,
            2085385 + 102661 + 130697 + 331509 + 3050 + 1780 + 2549
        );
        assert_eq!(busy, total - 331509 - 3050);
        assert_eq!(parse_proc_stat("intr 1 2"), None);
        let me = "4242 (crunch (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_self_stat(me), Some(300));
    }

    #[test]
    fn our_own_use_is_not_counted_as_others() {
        let a = CpuSample {
            busy: 1000,
            total: 4000,
            ours: 100,
        };
        // 200 ticks on 2 CPUs: 100 busy, of which 60 were ours.
        let b = CpuSample {
            busy: 1100,
            total: 4200,
            ours: 160,
        };
        assert!((others_cores(a, b, 2) - 0.4).abs() < 1e-9);
        // Another process burning one of two cores while we idle.
        let c = CpuSample {
            busy: 1200,
            total: 4400,
            ours: 160,
        };
        assert!((others_cores(b, c, 2) - 1.0).abs() < 1e-9);
        assert_eq!(others_cores(c, c, 2), 0.0);
    }

    #[test]
    fn this_machine_can_be_sampled() {
        let s = sample().expect("/proc on Linux");
        assert!(s.total >= s.busy && s.total > 0);
    }
}
