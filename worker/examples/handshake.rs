//! What a connection costs a running peer: the time from nothing to the
//! first answer (TCP, Noise, Yamux, one `Status` request) and the peer's
//! memory per idle connection.
//!
//! ```sh
//! worker --listen 127.0.0.1:7901 --threads 0 --data /tmp/handshake-peer &
//! cargo run -p mersenne-worker --profile test --example handshake -- 127.0.0.1:7901 $!
//! ```
//!
//! Prints the median (and the quartiles) of 50 handshakes, each from a
//! fresh key, and the peer's RSS before and after 200 connections that
//! stay open and idle, each from a key of its own. Only for a peer of your
//! own on loopback.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mersenne_worker::net::{self, Request, Response, SwarmHandle, SwarmOptions};

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("peer process {pid}"))?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("VmRSS")
}

async fn status(s: &SwarmHandle, addr: &str) -> anyhow::Result<()> {
    let frame = net::encode(&net::Frame::Request(Request::Status));
    let answer = tokio::time::timeout(Duration::from_secs(10), s.call(addr, frame)).await??;
    match net::decode(&answer)? {
        net::Frame::Response(Response::Status(_)) => Ok(()),
        other => bail!("unexpected {other:?}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, pid] = args.as_slice() else {
        bail!("usage: handshake PEER_ADDR PEER_PID");
    };
    let pid: u32 = pid.parse().context("PEER_PID")?;

    let mut ms = Vec::new();
    for _ in 0..50 {
        // The key and the swarm are made before the clock starts: what is
        // timed is the connection and the first request.
        let (s, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await?;
        let t = Instant::now();
        status(&s, addr).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        s.shutdown();
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "handshake + first request, 50 fresh keys: median {:.2} ms (quartiles {:.2} / {:.2})",
        ms[25], ms[12], ms[37]
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid)?;
    let mut held = Vec::new();
    for _ in 0..200 {
        let (s, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await?;
        status(&s, addr).await?;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    println!(
        "peer RSS {:.1} MiB before, {:.1} MiB with 200 idle connections: {:.1} KiB each",
        before / 1024.0,
        after / 1024.0,
        (after - before) / 200.0
    );
    drop(held);
    Ok(())
}
