//! `worker submit`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use mersenne_common::grant::WorkGrant;
use mersenne_common::work::check_submission;

use super::{LOCAL_PEER, Range};
use crate::net::{Request, Response, one_request};

/// `worker submit`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  worker submit --range 2-10000 --peer 127.0.0.1:7700\n  worker submit --range 2-10000 --grant work.grant --peer HOST_A:7700   # project mode"
)]
pub struct SubmitArgs {
    /// Exponents to test, inclusive: A-B or a single P.
    #[arg(long)]
    pub range: Range,
    /// Any peer of the ring.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
    /// Project mode: the project's grant of this range, made by
    /// `coordinator grant` (a project-mode peer creates no unit without
    /// one; open mode ignores it).
    #[arg(long, value_name = "FILE")]
    pub grant: Option<PathBuf>,
}

/// Reads a grant file and checks that it covers `from..=to`: a grant that
/// does not would be refused by the peer, less clearly.
fn read_grant(path: &Path, from: u64, to: u64) -> anyhow::Result<WorkGrant> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let g = WorkGrant::from_bytes(&bytes)
        .with_context(|| format!("{}: not a work grant", path.display()))?;
    if !(g.covers(from) && g.covers(to)) {
        bail!(
            "{}: the grant covers {}-{}, not {from}-{to}",
            path.display(),
            g.from,
            g.to
        );
    }
    Ok(g)
}

/// `worker submit`.
pub async fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    // The peer refuses these too; saying so here spares the round trip and
    // gives the exit status of bad input.
    check_submission(a.range.from, a.range.to)?;
    let grant = match &a.grant {
        Some(path) => Some(read_grant(path, a.range.from, a.range.to)?),
        None => None,
    };
    let r = Request::Submit {
        from: a.range.from,
        to: a.range.to,
        grant,
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
