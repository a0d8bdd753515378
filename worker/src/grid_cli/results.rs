//! `worker results`: the result table a peer holds, in four formats.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;

use mersenne_common::grid::check_need;
use mersenne_common::ll::res64_hex;
use mersenne_common::work::reputation::ReputationPolicy;
use mersenne_common::work::verify::{Policy, Verification, reputations, table_verdicts};
use mersenne_common::work::{UnitResult, agreement};

use super::text_table::TableWriter;
use super::{LOCAL_PEER, Range};
use crate::gimps::Users;
use crate::net::{Client, NetError, REQUEST_TIMEOUT, Request, Response};

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
    /// Only Mersenne primes (the `verified` column flags any not yet
    /// verified by a quorum of other peers).
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

/// One row of the table: the verified (or else the majority) result, the
/// agreement count and the verification state.
#[derive(Debug, Clone)]
pub struct Row {
    /// The verified result, or while unverified the one most results agree
    /// with.
    pub best: UnitResult,
    /// How many agree with it.
    pub agree: usize,
    /// How many results there are.
    pub total: usize,
    /// Whether a quorum of distinct peers with distinct shifts agree
    /// (`mersenne_common::work::verify`).
    pub verification: Verification,
    /// Why an unverified row is not verified yet (`grid::check_need`):
    /// waiting for a check, not sampled, disputed past the cap, no shift
    /// left; `None` when verified.
    pub waiting: Option<&'static str>,
}

/// Groups results into rows by exponent and judges each.
pub fn rows(results: &[UnitResult]) -> Vec<Row> {
    let (policy, rep_policy) = (Policy::default(), ReputationPolicy::default());
    let verdicts = table_verdicts(results, &policy, &rep_policy);
    let mut by_p: BTreeMap<u64, Vec<UnitResult>> = BTreeMap::new();
    for r in results {
        by_p.entry(r.exponent).or_default().push(r.clone());
    }
    let reps = reputations(
        by_p.iter().map(|(p, v)| (*p, v.as_slice())),
        &policy,
        &rep_policy,
    );
    let quarantined: BTreeSet<String> = reps
        .iter()
        .filter(|(_, r)| r.quarantined(&rep_policy))
        .map(|(n, _)| n.clone())
        .collect();
    by_p.iter()
        .filter_map(|(p, v)| {
            let verdict = &verdicts[p];
            let verified = verdict.answer.and_then(|(status, res64)| {
                v.iter()
                    .find(|r| r.status == status && r.res64 == res64)
                    .map(|best| {
                        let agree = v
                            .iter()
                            .filter(|r| r.status == status && r.res64 == res64)
                            .count();
                        (best, agree)
                    })
            });
            let waiting = (verdict.state != Verification::Verified)
                .then(|| check_need(*p, v, &reps, &quarantined, &policy, &rep_policy).reason());
            verified.or_else(|| agreement(v)).map(|(best, agree)| Row {
                best: best.clone(),
                agree,
                total: v.len(),
                verification: verdict.state,
                waiting,
            })
        })
        .collect()
}

/// When a row's result was finished, in the one timestamp format.
pub(super) fn when(ms: u64) -> String {
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
        "verified": r.verification.name(),
        "checks": r.total,
        "waiting": r.waiting,
        "error-code": crate::gimps::error_code(r.best.errors),
        "timestamp": when(r.best.finished_ms),
        "crunch-ms": r.best.crunch_ms,
    })
}

/// Results asked for in one page.
const PAGE: u32 = crate::net::RESULTS_PAGE_MAX;

/// Times a page is asked for before the walk gives up.
const PAGE_ATTEMPTS: u32 = 3;

/// One page of results. A page is a read, so one that did not come (a
/// busy peer, a dropped connection) is asked for again, with twice the
/// time each attempt; the last attempt's error is the answer.
async fn ask_page(client: &Client, peer: &str, req: Request) -> Result<Response, NetError> {
    let mut timeout = REQUEST_TIMEOUT;
    let mut attempt = 1;
    let mut waits = 0;
    loop {
        match client.request(peer, req.clone(), timeout).await {
            Err(NetError::Timeout(_) | NetError::Io(_)) if attempt < PAGE_ATTEMPTS => {
                attempt += 1;
                timeout *= 2;
            }
            // A peer read from another machine charges the rows to this
            // client's budget: a large table is walked at the pace the
            // peer allows, waiting as long as it says.
            Err(NetError::Remote(e)) if waits < RATE_WAITS => match retry_after_ms(&e) {
                Some(ms) => {
                    if waits == 0 {
                        eprintln!(
                            "{peer} limits how fast it is read from another machine: \
                             waiting as it asks (rate limit)"
                        );
                    }
                    waits += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(ms.clamp(10, 10_000)))
                        .await;
                }
                None => return Err(NetError::Remote(e)),
            },
            other => return other,
        }
    }
}

/// Waits on a peer's rate limit, at most, in one walk of the table.
const RATE_WAITS: u32 = 1000;

/// The wait a rate-limit refusal asks for ("… try again in N ms").
fn retry_after_ms(refusal: &str) -> Option<u64> {
    let rest = refusal.split("try again in ").nth(1)?;
    rest.strip_suffix(" ms")?.parse().ok()
}

/// `worker results`: walks the peer's table page by page, so a table of
/// millions of rows never travels in one frame. Every format is written
/// page by page, in bounded memory; the text table holds back its first
/// rows to fit its columns to ([`TableWriter`]). (Verification is
/// judged within each page: a quarantine earned in another page of 50,000
/// results is not seen there.)
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
    let users = if format == ResultsFormat::Gimps {
        gimps_users(&client, &a.peer).await?
    } else {
        Users::default()
    };
    // Buffered: a row of the text table is two lines, and stdout alone
    // would write each line by itself. Flushed after every page.
    let mut table = TableWriter::new(std::io::BufWriter::new(std::io::stdout()));
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
        let (results, next) = match ask_page(&client, &a.peer, req)
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
            for r in page {
                table.push(&r)?;
            }
            table.flush()?;
        } else {
            let mut out = std::io::stdout().lock();
            write_lines(&page.collect::<Vec<_>>(), format, &users, &mut out)?;
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
        table.finish()?;
    }
    Ok(())
}

/// The ring ids of the peers `peer` names in its status, for `user`.
async fn gimps_users(client: &Client, peer: &str) -> anyhow::Result<Users> {
    match client
        .request(peer, Request::Status, REQUEST_TIMEOUT)
        .await
        .with_context(|| format!("asking {peer} for its status"))?
    {
        Response::Status(s) => Ok(Users::from_status(&s)),
        other => bail!("unexpected answer from {peer}: {other:?}"),
    }
}

const CSV_HEADER: &str = "exponent,status,res64,computed_by,agreeing,results,verified,when";

/// Writes the rows; a write error (a closed pipe, say) is returned, not a
/// panic as from `println!`.
pub(super) fn print_rows(
    rows: &[Row],
    format: ResultsFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        ResultsFormat::Table => {
            let mut t = TableWriter::new(out);
            for r in rows {
                t.push(r)?;
            }
            t.finish().map(drop)
        }
        ResultsFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            write_lines(rows, format, &Users::default(), out)
        }
        _ => write_lines(rows, format, &Users::default(), out),
    }
}

/// The rows as lines of JSON, CSV (without its header) or Prime95's form.
/// `users` gives `--format gimps` its `user` fields.
fn write_lines(
    rows: &[Row],
    format: ResultsFormat,
    users: &Users,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for r in rows {
        match format {
            ResultsFormat::Json => writeln!(out, "{}", row_json(r))?,
            ResultsFormat::Gimps => {
                let user = users.get(&r.best.computed_by);
                writeln!(out, "{}", crate::gimps::line(&r.best, None, None, user))?
            }
            ResultsFormat::Csv => writeln!(
                out,
                "{},{},{},{},{},{},{},{}",
                r.best.exponent,
                r.best.status.code(),
                res64_hex(r.best.res64),
                r.best.computed_by,
                r.agree,
                r.total,
                r.verification.name(),
                when(r.best.finished_ms)
            )?,
            ResultsFormat::Table => unreachable!("tables are written by TableWriter"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod retry_tests {
    use super::retry_after_ms;

    #[test]
    fn the_wait_is_read_from_the_peers_refusal() {
        let e = crate::node::RateLimited {
            what: "results",
            payer: "key 12D3KooWx".into(),
            retry_ms: 1234,
        };
        assert_eq!(retry_after_ms(&e.to_string()), Some(1234));
        assert_eq!(retry_after_ms("not a member of this project"), None);
        assert_eq!(retry_after_ms("try again in soon ms"), None);
    }
}
