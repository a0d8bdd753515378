//! `worker local`: a whole grid in one process on loopback.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use mersenne_common::primes::primes_in;
use mersenne_common::work::{UnitResult, check_submission};

use super::results::{ResultsFormat, print_rows, rows};
use super::{CitizenArgs, Priority, Range, cores, shutdown_signal};
use crate::net::{NodeStatus, Request, Response, one_request};
use crate::node::{self, NodeConfig};

/// `worker local`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  worker local --nodes 4 --range 2-20000\n  worker local --cpu-limit 50 --max-memory 1G --schedule 22:00-07:00"
)]
pub struct LocalArgs {
    /// Peers to start on loopback.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Exponents to test.
    #[arg(long, default_value = "2-10000")]
    pub range: Range,
    /// Crunching threads in total, shared by all peers (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Keep the peers' data here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print the whole table at the end, not only the primes.
    #[arg(long)]
    pub table: bool,
    /// Keep running after every unit has a result until no unit is waiting
    /// for a double check (each is verified, or not sampled, disputed or
    /// without a shift left, with the reason in `--table`).
    #[arg(long)]
    pub until_verified: bool,
    /// The options that keep a peer out of the volunteer's way, as a peer
    /// takes them; they apply to every peer here (one memory budget for
    /// the shared pool).
    #[command(flatten)]
    pub citizen: CitizenArgs,
}

/// `worker local`: N peers in this process on loopback, one range, until done.
pub async fn local(a: LocalArgs) -> anyhow::Result<()> {
    if a.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    check_submission(a.range.from, a.range.to)?;
    let threads = a.threads.unwrap_or_else(cores).max(1);
    let (base, temp) = match &a.data {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("mersenne-local-{}", std::process::id())),
            true,
        ),
    };
    let priority: fn(usize) = match a.citizen.priority {
        Priority::Idle => crate::priority::lower_crunch_thread,
        Priority::Normal => |_| {},
    };
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("{CRUNCH_THREAD}{i}"))
            .start_handler(priority)
            .build()?,
    );
    let policy = a.citizen.policy();
    let units = primes_in(a.range.from, a.range.to).len();
    println!(
        "starting {} peers on loopback, {threads} crunching threads, range {}-{} ({units} units)",
        a.nodes, a.range.from, a.range.to
    );
    let mut nodes = Vec::new();
    for i in 0..a.nodes {
        let mut c = NodeConfig::new("127.0.0.1:0", base.join(format!("peer{i}")));
        // Each peer may keep the whole shared pool busy, and one more unit
        // queued per thread: a unit's claim and completion go through the
        // ring (a few ms on a loaded machine), and with only as many slots
        // as threads the pool ran dry while they did.
        c.threads = threads * 2;
        c.pool = Some(pool.clone());
        c.policy = policy.clone();
        c.gossip_every = Duration::from_millis(500);
        c.lease = Duration::from_secs(30);
        c.join = nodes.first().map(|n: &node::NodeHandle| n.addr.clone());
        nodes.push(node::start(c).await?);
    }
    for n in &nodes {
        println!("  peer {}", n.addr);
    }
    // Let the ring stabilize so that records land at their final owners
    // (they would move there anyway; this saves the hand-over).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    // A reused --data brings results of earlier runs (and maybe of other
    // ranges): throughput and efficiency count only this run's units.
    let started_ms = node::now_ms();
    let cpu0 = crate::citizen::cpu::self_and_threads(CRUNCH_THREAD);
    let (lo, hi) = (a.range.from, a.range.to);
    let (created, existed) = match one_request(
        &nodes[0].addr,
        Request::Submit {
            from: a.range.from,
            to: a.range.to,
            grant: None,
        },
    )
    .await?
    {
        Response::Created { created, existed } => (created, existed),
        other => bail!("submit failed: {other:?}"),
    };
    let submit_secs = t0.elapsed().as_secs_f64();
    println!("submitted: {created} units created, {existed} already existed");
    let bar = indicatif::ProgressBar::new(units as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} units ({rate}, ETA {left}) {msg}",
        )
        .expect("template")
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&crate::progress::rate(s.per_sec()));
            },
        )
        .with_key(
            "left",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let left = s.len().unwrap_or(0).saturating_sub(s.pos()) as f64;
                let eta = crate::progress::eta_secs(left, s.per_sec());
                let _ = w.write_str(&crate::progress::duration(eta.unwrap_or(f64::NAN)));
            },
        )
        .progress_chars("=> "),
    );
    // One listener for the whole loop: a Ctrl-C that arrives while the
    // counts are read would be lost by a listener made anew each round.
    let ctrl_c = shutdown_signal();
    tokio::pin!(ctrl_c);
    let interrupted = loop {
        let counts: Vec<usize> =
            futures::future::join_all(nodes.iter().map(|n| n.result_count_in(lo, hi))).await;
        let min = counts.iter().copied().min().unwrap_or(0);
        let max = counts.iter().copied().max().unwrap_or(0);
        bar.set_position(max as u64);
        if min >= units {
            if !a.until_verified {
                break false;
            }
            let t = nodes[0].results().await;
            let t: Vec<UnitResult> = t
                .into_iter()
                .filter(|r| (lo..=hi).contains(&r.exponent))
                .collect();
            let waiting = waiting_for_checks(&rows(&t));
            if waiting == 0 {
                break false;
            }
            bar.set_message(format!("all done; {waiting} waiting for a double check"));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = &mut ctrl_c => break true,
        }
    };
    bar.finish_and_clear();
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = crate::citizen::cpu::self_and_threads(CRUNCH_THREAD);
    let in_range = |t: Vec<UnitResult>| -> Vec<UnitResult> {
        t.into_iter()
            .filter(|r| (lo..=hi).contains(&r.exponent))
            .collect()
    };
    // Double checks go on adding results while the peers run, so the
    // tables are compared as one snapshot of all peers, retaken (for at
    // most 5 s) until every peer holds the same table: a result gossiped
    // between two reads is not a difference.
    let snapshot_deadline = Instant::now() + Duration::from_secs(5);
    let (table, identical) = loop {
        let tables: Vec<Vec<UnitResult>> =
            futures::future::join_all(nodes.iter().map(|n| n.results()))
                .await
                .into_iter()
                .map(|t| {
                    let mut t = in_range(t);
                    t.sort_by_key(|r| (r.exponent, r.computed_by.clone(), r.shift));
                    t
                })
                .collect();
        let identical = tables.windows(2).all(|w| w[0] == w[1]);
        if identical || Instant::now() >= snapshot_deadline {
            break (tables.into_iter().next().unwrap_or_default(), identical);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let this_run: Vec<&UnitResult> = table
        .iter()
        .filter(|r| r.finished_ms >= started_ms)
        .collect();
    let crunch_ms: u64 = this_run.iter().map(|r| r.crunch_ms).sum();
    // Where the wall time went: the submission, the first and the last
    // result of this run, and the rest until every table held every unit.
    let since_start = |ms: u64| ms.saturating_sub(started_ms) as f64 / 1000.0;
    let first_ms = this_run.iter().map(|r| r.finished_ms).min();
    let last_ms = this_run.iter().map(|r| r.finished_ms).max();
    let iterations: u64 = this_run.iter().map(|r| r.exponent.saturating_sub(2)).sum();
    let rows = rows(&table);
    if a.table {
        print_rows(&rows, ResultsFormat::Table, &mut std::io::stdout().lock())?;
    }
    let primes: Vec<String> = rows
        .iter()
        .filter(|r| r.best.status.code() == "P")
        .map(|r| r.best.exponent.to_string())
        .collect();
    if interrupted {
        println!("interrupted after {wall:.1} s; {} units done", rows.len());
    }
    println!(
        "Mersenne primes found ({}): {}",
        primes.len(),
        primes
            .iter()
            .map(|p| format!("M{p}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let verified = rows
        .iter()
        .filter(|r| {
            r.best.status.code() == "P"
                && r.verification == mersenne_common::work::verify::Verification::Verified
        })
        .count();
    if !primes.is_empty() {
        println!(
            "  of them verified by three independent tests: {verified}; the others are \
             reports not verified (yet: see the reasons below)"
        );
    }
    // A unit is this run's unless it had a result before the run began: a
    // double check of an earlier run's unit, crunched now, counts in the
    // crunch time and iterations above but does not make the unit new.
    let done_before = table
        .iter()
        .filter(|r| r.finished_ms < started_ms)
        .map(|r| r.exponent)
        .collect::<BTreeSet<_>>()
        .len();
    let run_units = rows.len() - done_before;
    if run_units < rows.len() {
        println!(
            "{} units were already done before this run; the figures below count the other {run_units}",
            rows.len() - run_units
        );
    }
    println!(
        "{run_units} units in {wall:.2} s wall: {:.1} units/s, {:.0} LL iterations/s",
        run_units as f64 / wall,
        iterations as f64 / wall
    );
    println!(
        "crunch time {:.2} s on {threads} threads: efficiency {:.3} (sum of unit crunch times / (wall x threads))",
        crunch_ms as f64 / 1000.0,
        crunch_ms as f64 / 1000.0 / (wall * threads as f64)
    );
    // The crunch times above are wall clock per unit, so a crunch thread
    // that the peers' own networking preempted still counts as crunching.
    // The threads' CPU time says what the cores really did.
    if let (Some((all0, crunch0)), Some((all1, crunch1))) = (cpu0, cpu1) {
        let crunch = crunch1.saturating_sub(crunch0).as_secs_f64();
        let rest = all1.saturating_sub(all0).as_secs_f64() - crunch;
        println!(
            "CPU time: crunch threads {crunch:.2} s ({:.3} of wall x threads), the rest of the \
             process {rest:.2} s ({:.2} ms a result: ring, transport, gossip, disk)",
            crunch / (wall * threads as f64),
            1000.0 * rest.max(0.0) / table.len().max(1) as f64
        );
    }
    // Useful work is one test per unit (the first result of this run);
    // double checks are the price of trusting it.
    let mut first: std::collections::BTreeMap<u64, &UnitResult> = Default::default();
    for &r in &this_run {
        let e = first.entry(r.exponent).or_insert(r);
        if r.finished_ms < e.finished_ms {
            *e = r;
        }
    }
    let useful_ms: u64 = first.values().map(|r| r.crunch_ms).sum();
    if useful_ms > 0 {
        println!(
            "useful work {:.2} s (one test per unit): efficiency on useful work {:.3}, validation overhead {:.2}x (all crunching / one test per unit)",
            useful_ms as f64 / 1000.0,
            useful_ms as f64 / 1000.0 / (wall * threads as f64),
            crunch_ms as f64 / useful_ms as f64
        );
    }

    let mut stats: Vec<NodeStatus> = Vec::new();
    for n in &nodes {
        stats.push(n.status().await);
    }
    let claims: u64 = stats.iter().map(|s| s.claims).sum();
    let claim_ms: f64 = stats.iter().map(|s| s.claim_ms_total).sum();
    let renewals: u64 = stats.iter().map(|s| s.renewals).sum();
    let msgs: u64 = stats.iter().map(|s| s.messages_out).sum();
    let frames: u64 = stats.iter().map(|s| s.frames_out).sum();
    let per_unit = |n: u64| n as f64 / run_units.max(1) as f64;
    println!(
        "overhead: {:.3} ms to find and claim a unit ({claims} claims), {renewals} lease renewals, \
         {:.1} messages per unit in {:.1} frames ({msgs} messages in all: ring maintenance, \
         lookups, store operations, replication, result gossip; ring messages to one peer \
         share a frame when they queue behind its last)",
        claim_ms / claims.max(1) as f64,
        per_unit(msgs),
        per_unit(frames)
    );
    if let (Some(f), Some(l)) = (first_ms, last_ms) {
        println!(
            "timeline: submitted in {submit_secs:.2} s, first result at {:.2} s, last at {:.2} s, \
             every table complete at {wall:.2} s",
            since_start(f),
            since_start(l)
        );
    }
    let dup = table.len() - rows.len();
    println!(
        "tables on all {} peers identical: {identical}; duplicate results (double checks \
         included): {dup}",
        nodes.len()
    );
    // Without --until-verified the run ends when every table holds every
    // unit: double checks still running then are dropped, so this is the
    // share verified by that time.
    let verified = rows
        .iter()
        .filter(|r| r.verification == mersenne_common::work::verify::Verification::Verified)
        .count();
    let mut waiting: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &rows {
        if let Some(why) = r.waiting {
            *waiting.entry(why).or_default() += 1;
        }
    }
    println!(
        "verified at the end: {verified} of {} units ({:.1}%); not verified: {waiting:?}",
        rows.len(),
        100.0 * verified as f64 / rows.len().max(1) as f64
    );
    if interrupted || !temp {
        // A --data the user keeps must hold every result and record on
        // disk for the next run, including those of the last second.
        stop_all(nodes).await;
    } else {
        // Finished in a temporary directory that is deleted next: nothing
        // is in progress and nothing needs to reach the disk.
        for n in nodes {
            n.abort();
        }
        // A unit that was finishing on the pool still writes its line to
        // results.json.txt: let every crunch thread end its current job
        // (all of them see the stop within one step) before the directory
        // goes, bounded so that a stuck thread cannot hold the exit.
        let drained = tokio::task::spawn_blocking(move || pool.broadcast(|_| ()));
        let _ = tokio::time::timeout(Duration::from_secs(5), drained).await;
    }
    if temp {
        remove_temp_dir(&base).await;
    }
    Ok(())
}

/// Deletes `worker local`'s temporary directory. A peer's blocking write
/// that was under way when its tasks were aborted (a record batch, its
/// peer list) may still create a file while the tree is removed, which
/// makes the removal fail: it is tried again, a few times, and a directory
/// that will not go is named.
async fn remove_temp_dir(dir: &std::path::Path) {
    for attempt in 0..10 {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if attempt == 9 => {
                eprintln!("could not delete {}: {e}", dir.display());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Name prefix of the crunch pool's threads, by which their CPU time is
/// told apart from the rest of the process.
const CRUNCH_THREAD: &str = "crunch-";

/// Longest `worker local` waits for its peers to stop after Ctrl-C.
const LOCAL_STOP_LIMIT: Duration = Duration::from_secs(30);

/// Stops every peer of `worker local` the graceful way, all at once:
/// checkpoint, give leases back, write the records, leave. Bounded by
/// [`LOCAL_STOP_LIMIT`]; a second Ctrl-C stops waiting.
async fn stop_all(nodes: Vec<node::NodeHandle>) {
    let n = nodes.len();
    println!("stopping {n} peers: checkpointing units in progress, giving leases back, leaving");
    let t = Instant::now();
    let all = futures::future::join_all(nodes.into_iter().map(|n| n.stop()));
    tokio::select! {
        _ = all => println!("stopped {n} peers in {:.1} s", t.elapsed().as_secs_f64()),
        _ = tokio::time::sleep(LOCAL_STOP_LIMIT) => {
            println!("peers still stopping after {} s; exiting anyway", LOCAL_STOP_LIMIT.as_secs());
        }
        _ = shutdown_signal() => println!("interrupted again; exiting without waiting"),
    }
}

/// Rows still waiting for a double check the grid will schedule.
fn waiting_for_checks(rows: &[super::results::Row]) -> usize {
    let wanted = mersenne_common::grid::CheckNeed::Wanted(Default::default()).reason();
    rows.iter().filter(|r| r.waiting == Some(wanted)).count()
}
