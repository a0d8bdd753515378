//! `worker submit`.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;

use mersenne_common::work::check_submission;

use super::{LOCAL_PEER, Range};
use crate::net::{Request, Response, one_request};

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

/// `worker submit`.
pub async fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    // The peer refuses these too; saying so here spares the round trip and
    // gives the exit status of bad input.
    check_submission(a.range.from, a.range.to)?;
    let r = Request::Submit {
        from: a.range.from,
        to: a.range.to,
        grant: None,
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
