//! The grid commands: run a peer, `submit`, `results`, `status`, `local`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::Table;

use mersenne_common::ll::res64_hex;
use mersenne_common::primes::primes_in;
use mersenne_common::work::{UnitResult, agreement, check_submission};

use crate::net::{Client, NodeStatus, REQUEST_TIMEOUT, Request, Response, one_request};
use crate::node::{self, NodeConfig, ServerLimits};
use crate::preflight;

/// An inclusive range of exponents, `A-B` or a single `P`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First exponent.
    pub from: u64,
    /// Last exponent.
    pub to: u64,
}

impl std::str::FromStr for Range {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |x: &str| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("{x:?} is not a number (expected A-B or P, e.g. 2-10000)"))
        };
        let (from, to) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let p = parse(s)?;
                (p, p)
            }
        };
        if from > to {
            return Err(format!("range {from}-{to} is empty (A must be <= B)"));
        }
        Ok(Range { from, to })
    }
}

/// The ring options every peer takes, the `worker` peer and the
/// `coordinator` alike (each flattens this struct into its command line).
#[derive(Debug, Clone, Args)]
pub struct RingArgs {
    /// A peer of the ring to join (host:port). Without it, start a new ring.
    #[arg(long, value_name = "PEER")]
    pub join: Option<String>,
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "0.0.0.0:7700", value_name = "ADDR")]
    pub listen: String,
    /// Address other peers reach this one at (default: the bound address).
    /// Needed when listening on 0.0.0.0 or behind NAT.
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// Lease length in seconds; a unit whose worker vanished is handed out
    /// again after this long.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lease_secs: u64,
    /// Seconds of work between checkpoints of a unit in progress.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub checkpoint_secs: u64,
    /// Milliseconds between rounds of ring stabilization (Chord) and of
    /// result gossip and anti-entropy.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub gossip_ms: u64,
    /// Length r of the Chord successor list; every unit record is kept by
    /// its owner and replicated on the owner's r successors.
    #[arg(long, default_value_t = 8, value_name = "R")]
    pub successors: usize,
    /// Connections this peer serves at once; more are closed at once.
    #[arg(long, default_value_t = ServerLimits::default().max_connections, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a connection may go without a complete frame before it is
    /// closed (slow or silent clients).
    #[arg(long, default_value_t = ServerLimits::default().idle.as_secs(), value_name = "SECS")]
    pub idle_secs: u64,
    /// Exponents one source address may submit per minute (a submission
    /// counts its width, at least 1000).
    #[arg(long, default_value_t = ServerLimits::default().submit_exponents_per_min, value_name = "N")]
    pub submit_per_min: u64,
    /// Results one source address may push per second (bursts of ten
    /// seconds' worth); pushes over it are refused, and anti-entropy
    /// brings them later.
    #[arg(long, default_value_t = ServerLimits::default().results_per_sec, value_name = "N")]
    pub results_per_sec: u64,
}

impl RingArgs {
    /// The node configuration these options describe, for a peer keeping
    /// its data in `data` and crunching `threads` units at once.
    pub fn config(&self, data: PathBuf, threads: usize) -> NodeConfig {
        let mut c = NodeConfig::new(&self.listen, data);
        c.join = self.join.clone();
        c.advertise = self.advertise.clone();
        c.threads = threads;
        c.lease = Duration::from_secs(self.lease_secs.max(1));
        c.checkpoint_every = Duration::from_secs(self.checkpoint_secs.max(1));
        c.gossip_every = Duration::from_millis(self.gossip_ms.max(50));
        c.successors = self.successors.max(1);
        c.limits.max_connections = self.max_connections.max(1);
        c.limits.idle = Duration::from_secs(self.idle_secs.max(1));
        c.limits.submit_exponents_per_min = self.submit_per_min.max(1);
        c.limits.results_per_sec = self.results_per_sec.max(1);
        c
    }
}

/// Options of a running peer (the top-level `worker` command).
#[derive(Debug, Clone, Args)]
pub struct PeerArgs {
    /// Options shared with the coordinator.
    #[command(flatten)]
    pub ring: RingArgs,
    /// Units crunched at once (default: all cores; 0: do not crunch).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Directory for the result table and checkpoints.
    #[arg(long, default_value = "mersenne-data", value_name = "DIR")]
    pub data: PathBuf,
}

impl RingArgs {
    /// Refuses a malformed `--advertise` and a `--join` that does not
    /// resolve before the peer starts, instead of retrying for ever.
    pub async fn preflight(&self) -> anyhow::Result<()> {
        if let Some(j) = &self.join {
            preflight::check_join(j).await?;
        }
        if let Some(a) = &self.advertise {
            preflight::check_addr_syntax("--advertise", a)?;
        }
        Ok(())
    }
}

impl PeerArgs {
    /// The node configuration these options describe.
    pub fn config(&self, default_threads: usize) -> NodeConfig {
        self.ring
            .config(self.data.clone(), self.threads.unwrap_or(default_threads))
    }
}

/// The peer a client command asks when given no `--peer`: one running on
/// this machine with the default `--listen`.
pub const LOCAL_PEER: &str = "127.0.0.1:7700";

/// `worker submit`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  worker submit --range 2-10000 --peer 127.0.0.1:7700")]
pub struct SubmitArgs {
    /// Exponents to test, inclusive: A-B or a single P.
    #[arg(long)]
    pub range: Range,
    /// Any peer of the ring.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
}

/// `worker results`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  worker results --peer 127.0.0.1:7700 --primes\n  worker results --peer 127.0.0.1:7700 --range 2-1000 --json"
)]
pub struct ResultsArgs {
    /// Any peer of the ring.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
    /// One JSON object per line (GIMPS results.json field names plus ours).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header line.
    #[arg(long)]
    pub csv: bool,
    /// Output format; `gimps` is one Prime95 `results.json.txt` line per
    /// result (as in `DATA/results.json.txt`).
    #[arg(long, value_enum, conflicts_with_all = ["json", "csv"])]
    pub format: Option<ResultsFormat>,
    /// Only exponents in this range.
    #[arg(long)]
    pub range: Option<Range>,
    /// Only Mersenne primes.
    #[arg(long)]
    pub primes: bool,
}

/// How `worker results` prints the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsFormat {
    /// A text table (the default).
    Table,
    /// As `--json`.
    Json,
    /// As `--csv`.
    Csv,
    /// Prime95 `results.json.txt` lines.
    Gimps,
}

/// `worker status`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  worker status --peer 127.0.0.1:7700 --json")]
pub struct StatusArgs {
    /// The peer to ask.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `worker local`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  worker local --nodes 4 --range 2-20000")]
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
}

/// Cores on this machine.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a peer until Ctrl-C / SIGTERM, after checking its addresses.
pub async fn run_peer(args: PeerArgs) -> anyhow::Result<()> {
    args.ring.preflight().await?;
    node::run(args.config(cores()), shutdown_signal()).await
}

/// `worker submit`.
pub async fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    // The peer refuses these too; saying so here spares the round trip and
    // gives the exit status of bad input.
    check_submission(a.range.from, a.range.to)?;
    let r = Request::Submit {
        from: a.range.from,
        to: a.range.to,
    };
    match one_request(&a.peer, r)
        .await
        .with_context(|| format!("submitting to {}", a.peer))?
    {
        Response::Created { created, existed } => {
            writeln!(
                std::io::stdout(),
                "submitted {}-{}: {created} units created, {existed} already existed",
                a.range.from,
                a.range.to
            )?;
            Ok(())
        }
        other => bail!("unexpected answer from {}: {other:?}", a.peer),
    }
}

/// One row of the table: the majority result and the agreement count.
#[derive(Debug, Clone)]
pub struct Row {
    /// The result that most results agree with.
    pub best: UnitResult,
    /// How many agree with it.
    pub agree: usize,
    /// How many results there are.
    pub total: usize,
}

/// Groups results into rows by exponent.
pub fn rows(results: &[UnitResult]) -> Vec<Row> {
    let mut by_p: BTreeMap<u64, Vec<UnitResult>> = BTreeMap::new();
    for r in results {
        by_p.entry(r.exponent).or_default().push(r.clone());
    }
    by_p.values()
        .filter_map(|v| {
            agreement(v).map(|(best, agree)| Row {
                best: best.clone(),
                agree,
                total: v.len(),
            })
        })
        .collect()
}

/// When a row's result was finished, in the one timestamp format.
fn when(ms: u64) -> String {
    crate::timefmt::utc_from_unix_ms(ms)
}

/// The JSON object for one row.
pub fn row_json(r: &Row) -> serde_json::Value {
    serde_json::json!({
        "exponent": r.best.exponent,
        "worktype": "LL",
        "status": r.best.status.code(),
        "res64": res64_hex(r.best.res64),
        "shift-count": r.best.shift,
        "program": crate::Program::this(),
        "engine": r.best.engine,
        "computed-by": r.best.computed_by,
        "agreeing": r.agree,
        "results": r.total,
        "timestamp": when(r.best.finished_ms),
        "crunch-ms": r.best.crunch_ms,
    })
}

/// Results asked for in one page.
const PAGE: u32 = crate::net::RESULTS_PAGE_MAX;

/// `worker results`: walks the peer's table page by page, so a table of
/// millions of rows never travels in one frame. Every format but the text
/// table is written page by page, in bounded memory.
pub async fn results(a: ResultsArgs) -> anyhow::Result<()> {
    let range = a.range.unwrap_or(Range {
        from: 0,
        to: u64::MAX,
    });
    let format = a.format.unwrap_or(if a.json {
        ResultsFormat::Json
    } else if a.csv {
        ResultsFormat::Csv
    } else {
        ResultsFormat::Table
    });
    let client = Client::new();
    let mut table = Vec::new();
    if format == ResultsFormat::Csv {
        writeln!(std::io::stdout().lock(), "{CSV_HEADER}")?;
    }
    let mut cursor = range.from;
    // Each page starts past the one before, so the walk ends.
    loop {
        let req = Request::ResultsPage {
            from: cursor,
            to: range.to,
            limit: PAGE,
        };
        let (results, next) = match client
            .request(&a.peer, req, REQUEST_TIMEOUT)
            .await
            .with_context(|| format!("asking {} for results", a.peer))?
        {
            Response::ResultsPage { results, next } => (results, next),
            other => bail!("unexpected answer from {}: {other:?}", a.peer),
        };
        let results: Vec<UnitResult> = results.into_iter().map(UnitResult::from).collect();
        let page = rows(&results)
            .into_iter()
            .filter(|r| !a.primes || r.best.status.code() == "P");
        if format == ResultsFormat::Table {
            table.extend(page);
        } else {
            let mut out = std::io::stdout().lock();
            write_lines(&page.collect::<Vec<_>>(), format, &mut out)?;
            out.flush()?;
        }
        match next {
            None => break,
            Some(n) if n > cursor && n <= range.to => cursor = n,
            Some(n) => bail!(
                "{} answered a page of results from {cursor} with a next page at {n}",
                a.peer
            ),
        }
    }
    if format == ResultsFormat::Table {
        let mut out = std::io::stdout().lock();
        print_rows(&table, format, &mut out)?;
        out.flush()?;
    }
    Ok(())
}

const CSV_HEADER: &str = "exponent,status,res64,computed_by,agreeing,results,when";

/// Writes the rows; a write error (a closed pipe, say) is returned, not a
/// panic as from `println!`.
fn print_rows(rows: &[Row], format: ResultsFormat, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        ResultsFormat::Table => {
            let mut t = Table::new();
            t.set_header(vec![
                "exponent",
                "status",
                "res64",
                "computed by",
                "agree",
                "when (UTC)",
            ]);
            for r in rows {
                t.add_row(vec![
                    r.best.exponent.to_string(),
                    r.best.status.code().to_string(),
                    res64_hex(r.best.res64),
                    r.best.computed_by.clone(),
                    format!("{}/{}", r.agree, r.total),
                    when(r.best.finished_ms),
                ]);
            }
            writeln!(out, "{t}")?;
            writeln!(out, "{} exponents", rows.len())
        }
        ResultsFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            write_lines(rows, format, out)
        }
        _ => write_lines(rows, format, out),
    }
}

/// The rows as lines of JSON, CSV (without its header) or Prime95's form.
fn write_lines(rows: &[Row], format: ResultsFormat, out: &mut dyn Write) -> std::io::Result<()> {
    for r in rows {
        match format {
            ResultsFormat::Json => writeln!(out, "{}", row_json(r))?,
            ResultsFormat::Gimps => writeln!(out, "{}", crate::gimps::line(&r.best, None))?,
            ResultsFormat::Csv => writeln!(
                out,
                "{},{},{},{},{},{},{}",
                r.best.exponent,
                r.best.status.code(),
                res64_hex(r.best.res64),
                r.best.computed_by,
                r.agree,
                r.total,
                when(r.best.finished_ms)
            )?,
            ResultsFormat::Table => unreachable!("tables are printed whole"),
        }
    }
    Ok(())
}

/// `worker status`.
pub async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let st: NodeStatus = match one_request(&a.peer, Request::Status)
        .await
        .with_context(|| format!("asking {} for its status", a.peer))?
    {
        Response::Status(s) => *s,
        other => bail!("unexpected answer from {}: {other:?}", a.peer),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&st)?)?;
        return Ok(());
    }
    let peer = |p: &(String, String)| format!("{} ({})", p.0, p.1);
    writeln!(out, "node         {} (ring id {})", st.addr, st.id)?;
    writeln!(out, "peer id      {}", st.peer_id)?;
    writeln!(
        out,
        "ring         {}; {} peers known",
        if st.membership.is_empty() {
            if st.member { "member" } else { "joining" }
        } else {
            st.membership.as_str()
        },
        st.known_peers
    )?;
    writeln!(
        out,
        "predecessor  {}",
        st.predecessor
            .as_ref()
            .map(peer)
            .unwrap_or_else(|| "(none)".into())
    )?;
    writeln!(
        out,
        "successors   {}",
        if st.successors.is_empty() {
            "(none: a ring of one)".to_string()
        } else {
            st.successors
                .iter()
                .map(peer)
                .collect::<Vec<_>>()
                .join(", ")
        }
    )?;
    writeln!(
        out,
        "fingers      {} entries, {} distinct nodes",
        st.fingers, st.finger_nodes
    )?;
    writeln!(
        out,
        "units held   {} ({} owned here: submitted {}, claimed {}, done {}; the rest are replicas)",
        st.held, st.owned, st.submitted, st.claimed, st.done
    )?;
    writeln!(out, "crunching    {:?}", st.crunching)?;
    writeln!(out, "finished     {} units here", st.finished)?;
    writeln!(out, "result table {} exponents", st.results)?;
    writeln!(
        out,
        "throughput   {:.0} LL iterations/s over {:.0} s",
        st.iterations_per_sec, st.uptime_secs
    )?;
    writeln!(
        out,
        "messages     {} in, {} out; {} ring store operations; {} connections open",
        st.messages_in, st.messages_out, st.ring_ops, st.connections
    )?;
    writeln!(
        out,
        "claims       {} ({:.2} ms each to find and claim), {} lease renewals",
        st.claims,
        st.claim_ms_total / st.claims.max(1) as f64,
        st.renewals
    )?;
    out.flush()?;
    Ok(())
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
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("crunch-{i}"))
            .start_handler(crate::priority::lower_crunch_thread)
            .build()?,
    );
    let units = primes_in(a.range.from, a.range.to).len();
    println!(
        "starting {} peers on loopback, {threads} crunching threads, range {}-{} ({units} units)",
        a.nodes, a.range.from, a.range.to
    );
    let mut nodes = Vec::new();
    for i in 0..a.nodes {
        let mut c = NodeConfig::new("127.0.0.1:0", base.join(format!("peer{i}")));
        // Each peer may keep the whole shared pool busy, so that a peer
        // waiting on a claim never leaves a core idle.
        c.threads = threads;
        c.pool = Some(pool.clone());
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
    let (lo, hi) = (a.range.from, a.range.to);
    let (created, existed) = match one_request(
        &nodes[0].addr,
        Request::Submit {
            from: a.range.from,
            to: a.range.to,
        },
    )
    .await?
    {
        Response::Created { created, existed } => (created, existed),
        other => bail!("submit failed: {other:?}"),
    };
    println!("submitted: {created} units created, {existed} already existed");
    let bar = indicatif::ProgressBar::new(units as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} units ({per_sec}) {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let interrupted = loop {
        let counts: Vec<usize> =
            futures::future::join_all(nodes.iter().map(|n| n.result_count_in(lo, hi))).await;
        let min = counts.iter().copied().min().unwrap_or(0);
        let max = counts.iter().copied().max().unwrap_or(0);
        bar.set_position(max as u64);
        if min >= units {
            break false;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown_signal() => break true,
        }
    };
    bar.finish_and_clear();
    let wall = t0.elapsed().as_secs_f64();
    let in_range = |t: Vec<UnitResult>| -> Vec<UnitResult> {
        t.into_iter()
            .filter(|r| (lo..=hi).contains(&r.exponent))
            .collect()
    };
    let table = in_range(nodes[0].results().await);
    let this_run: Vec<&UnitResult> = table
        .iter()
        .filter(|r| r.finished_ms >= started_ms)
        .collect();
    let crunch_ms: u64 = this_run.iter().map(|r| r.crunch_ms).sum();
    let iterations: u64 = this_run.iter().map(|r| r.exponent.saturating_sub(2)).sum();
    let rows = rows(&table);
    let mut identical = true;
    for n in &nodes {
        let mut t = in_range(n.results().await);
        t.sort_by_key(|r| (r.exponent, r.computed_by.clone()));
        let mut u = table.clone();
        u.sort_by_key(|r| (r.exponent, r.computed_by.clone()));
        identical &= t == u;
    }
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
    let run_units = this_run
        .iter()
        .map(|r| r.exponent)
        .collect::<BTreeSet<_>>()
        .len();
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
    let mut stats: Vec<NodeStatus> = Vec::new();
    for n in &nodes {
        stats.push(n.status().await);
    }
    let claims: u64 = stats.iter().map(|s| s.claims).sum();
    let claim_ms: f64 = stats.iter().map(|s| s.claim_ms_total).sum();
    let renewals: u64 = stats.iter().map(|s| s.renewals).sum();
    let msgs: u64 = stats.iter().map(|s| s.messages_out).sum();
    println!(
        "overhead: {:.3} ms to find and claim a unit ({claims} claims), {renewals} lease renewals, \
         {:.1} messages per unit ({msgs} frames in all: ring maintenance, lookups, \
         store operations, replication, result gossip)",
        claim_ms / claims.max(1) as f64,
        msgs as f64 / run_units.max(1) as f64
    );
    let dup = table.len() - rows.len();
    println!(
        "tables on all {} peers identical: {identical}; duplicate results: {dup}",
        nodes.len()
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
    }
    if temp {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(
            "2-100".parse::<Range>().unwrap(),
            Range { from: 2, to: 100 }
        );
        assert_eq!("61".parse::<Range>().unwrap(), Range { from: 61, to: 61 });
        assert!("9-3".parse::<Range>().is_err());
        assert!("x-3".parse::<Range>().is_err());
    }
}
