//! `worker pause` and `worker resume`: hold and release a running peer.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;

use super::LOCAL_PEER;
use crate::net::{Request, Response, one_request};

/// `worker pause` / `worker resume`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  worker pause --peer 127.0.0.1:7700\n  worker resume")]
pub struct PauseArgs {
    /// The peer.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
}

async fn send(a: &PauseArgs, req: Request, done: &str) -> anyhow::Result<()> {
    match one_request(&a.peer, req)
        .await
        .with_context(|| format!("asking {}", a.peer))?
    {
        Response::Ok => {
            writeln!(std::io::stdout(), "{} {done}", a.peer)?;
            Ok(())
        }
        other => bail!("unexpected answer from {}: {other:?}", a.peer),
    }
}

/// `worker pause`: the peer checkpoints its units and crunches nothing
/// until `worker resume`; it keeps their leases for `--pause-keep-secs`.
pub async fn pause(a: PauseArgs) -> anyhow::Result<()> {
    send(
        &a,
        Request::Pause,
        "paused: units checkpointed, leases kept for --pause-keep-secs",
    )
    .await
}

/// `worker resume`.
pub async fn resume(a: PauseArgs) -> anyhow::Result<()> {
    send(&a, Request::Resume, "resumed").await
}
