//! `worker import`: a Prime95 `worktodo.txt` submitted to the grid.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::LOCAL_PEER;
use crate::net::{Request, Response, one_request};
use crate::worktodo;

/// `worker import`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Example:\n  worker import worktodo.txt --peer 127.0.0.1:7700\n\n\
                  Test= and DoubleCheck= lines (with or without an assignment id) become LL units;\n\
                  every other line is listed with the reason it is not run. The peer writes each\n\
                  result to its DATA/results.json.txt with the line's aid."
)]
pub struct ImportArgs {
    /// Prime95's worktodo.txt (or any file of its lines).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The peer that keeps the assignments and reports their results.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
}

/// `worker import`.
pub async fn import(a: ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let w = worktodo::parse(&text);
    let mut out = std::io::stdout().lock();
    for s in &w.skipped {
        writeln!(out, "line {}: not run: {}: {}", s.line, s.reason, s.text)?;
    }
    if w.runnable.is_empty() {
        writeln!(out, "nothing to submit from {}", a.file.display())?;
        return Ok(());
    }
    let units = w
        .runnable
        .iter()
        .map(|x| (x.exponent, x.aid.clone()))
        .collect();
    let (created, existed) = match one_request(&a.peer, Request::Assign { units, grant: None })
        .await
        .with_context(|| format!("importing into {}", a.peer))?
    {
        Response::Created { created, existed } => (created, existed),
        Response::Error(e) => bail!("{} refused the import: {e}", a.peer),
        other => bail!("unexpected answer from {}: {other:?}", a.peer),
    };
    let with_aid = w.runnable.iter().filter(|x| x.aid.is_some()).count();
    writeln!(
        out,
        "imported {} LL tests ({with_aid} with an assignment id): {created} units created, \
         {existed} already existed; {} lines not run",
        w.runnable.len(),
        w.skipped.len()
    )?;
    out.flush()?;
    Ok(())
}
