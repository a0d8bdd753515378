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

/// The name of a `/proc/.../stat` line's thread or process: the text in
/// its parentheses (which may itself hold spaces or parentheses).
pub fn parse_stat_name(text: &str) -> Option<&str> {
    Some(&text[text.find('(')? + 1..text.rfind(')')?])
}

/// CPU time of this process so far, and of those of its threads whose
/// names start with `prefix` (e.g. the crunch pool's `crunch-`), from
/// `/proc/self/stat` and `/proc/self/task/*/stat`. `None` where `/proc`
/// is missing. Threads that ended are in the process's figure only.
pub fn self_and_threads(prefix: &str) -> Option<(std::time::Duration, std::time::Duration)> {
    // /proc reports clock ticks in USER_HZ, which Linux fixes at 100 on
    // every architecture it exports to user space.
    let ticks = |t: u64| std::time::Duration::from_millis(t * 10);
    let all = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut named = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        if parse_stat_name(&text).is_some_and(|n| n.starts_with(prefix)) {
            named += parse_self_stat(&text).unwrap_or(0);
        }
    }
    Some((ticks(all), ticks(named)))
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
    fn thread_names_parse_with_spaces_and_parentheses() {
        assert_eq!(parse_stat_name("12 (crunch-0) R 1 2"), Some("crunch-0"));
        assert_eq!(parse_stat_name("12 (a (b) c) S 1"), Some("a (b) c"));
        assert_eq!(parse_stat_name("no name here"), None);
    }

    /// A thread that burns CPU is found by its name, and its time is in
    /// the process's time too.
    #[test]
    fn a_named_threads_cpu_time_is_counted() {
        let Some((_, before)) = self_and_threads("cpu-acct-test") else {
            eprintln!("no /proc here: skipped");
            return;
        };
        assert_eq!(before, std::time::Duration::ZERO);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::Builder::new()
            .name("cpu-acct-test".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut x = 1u64;
                while start.elapsed() < std::time::Duration::from_millis(300) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                tx.send(()).unwrap();
                // Alive until read, so that its task entry is still there.
                std::thread::park();
                x
            })
            .unwrap();
        rx.recv().unwrap();
        let (all, named) = self_and_threads("cpu-acct-test").unwrap();
        t.thread().unpark();
        t.join().unwrap();
        // 300 ms of wall time spinning; on a loaded machine it may get
        // less CPU, but some, and never more than the whole process.
        assert!(named > std::time::Duration::ZERO, "{named:?}");
        assert!(named <= all, "{named:?} > {all:?}");
    }

    #[test]
    fn this_machine_can_be_sampled() {
        let s = sample().expect("/proc on Linux");
        assert!(s.total >= s.busy && s.total > 0);
    }
}
