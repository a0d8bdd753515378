//! `worker results`: the result table a peer holds, in four formats.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::Table;

use mersenne_common::ll::res64_hex;
use mersenne_common::work::{UnitResult, agreement};

use super::{LOCAL_PEER, Range};
use crate::net::{Request, Response, one_request};

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

/// `worker results`.
pub async fn results(a: ResultsArgs) -> anyhow::Result<()> {
    let range = a.range.unwrap_or(Range {
        from: 0,
        to: u64::MAX,
    });
    let req = Request::Results {
        from: range.from,
        to: range.to,
    };
    let results = match one_request(&a.peer, req)
        .await
        .with_context(|| format!("asking {} for results", a.peer))?
    {
        Response::Results { results, .. } => results
            .into_iter()
            .map(UnitResult::from)
            .collect::<Vec<_>>(),
        other => bail!("unexpected answer from {}: {other:?}", a.peer),
    };
    let rows: Vec<Row> = rows(&results)
        .into_iter()
        .filter(|r| !a.primes || r.best.status.code() == "P")
        .collect();
    let mut out = std::io::stdout().lock();
    let format = a.format.unwrap_or(if a.json {
        ResultsFormat::Json
    } else if a.csv {
        ResultsFormat::Csv
    } else {
        ResultsFormat::Table
    });
    print_rows(&rows, format, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Writes the rows; a write error (a closed pipe, say) is returned, not a
/// panic as from `println!`.
pub(super) fn print_rows(
    rows: &[Row],
    format: ResultsFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if format == ResultsFormat::Json {
        for r in rows {
            writeln!(out, "{}", row_json(r))?;
        }
    } else if format == ResultsFormat::Gimps {
        for r in rows {
            writeln!(out, "{}", crate::gimps::line(&r.best, None, None))?;
        }
    } else if format == ResultsFormat::Csv {
        writeln!(
            out,
            "exponent,status,res64,computed_by,agreeing,results,when"
        )?;
        for r in rows {
            writeln!(
                out,
                "{},{},{},{},{},{},{}",
                r.best.exponent,
                r.best.status.code(),
                res64_hex(r.best.res64),
                r.best.computed_by,
                r.agree,
                r.total,
                when(r.best.finished_ms)
            )?;
        }
    } else {
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
        writeln!(out, "{} exponents", rows.len())?;
    }
    Ok(())
}
