//! Floods a running peer the way issue 11's attacker did, speaking the real
//! wire protocol, and prints the peer's memory and CPU around each flood:
//!
//! ```sh
//! worker --listen 127.0.0.1:7900 --threads 0 --data /tmp/flood-peer &
//! cargo run -p mersenne-worker --profile test --example flood -- 127.0.0.1:7900 $!
//! ```
//!
//! Name floods after the pid to run only those: `frames`, `results`,
//! `digests`, `names`, `address`.
//!
//! Floods, one after another: 100 connections (each a swarm with a key of
//! its own) each sending one 16 MiB frame of garbage; 1,000,000 made-up
//! results in 5 pushes; 1,000 anti-entropy digest requests claiming every
//! bucket differs; two results with 7 MiB names (9 MiB ones no longer fit a
//! frame); a 15 MiB frame that does not decode (the old transport's
//! 15 MiB address in a hello; addresses no longer travel in a handshake).
//! After each one the peer must still answer `status`. For each: peak and
//! current RSS (VmHWM, VmRSS) and the CPU seconds the peer spent (utime +
//! stime) during it.
//!
//! Only for a peer of your own on loopback: the results pushed are made up
//! (use a data directory of its own).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use mersenne_worker::net::{
    self, Client, Request, Response, SwarmHandle, SwarmOptions, WireResult, WireStatus,
};

/// (VmRSS, VmHWM) in MiB.
fn memory(pid: u32) -> anyhow::Result<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("peer process {pid}"))?;
    let kib = |key: &str| -> f64 {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Ok((kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0))
}

/// CPU seconds (user + system) the process has used.
fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let rest = &s[s.rfind(')').context("stat format")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One request from a fresh key; the answer, or why none came.
fn ask(addr: &str, req: Request) -> anyhow::Result<Response> {
    runtime().block_on(async {
        Ok(Client::new()
            .request(addr, req, Duration::from_secs(60))
            .await?)
    })
}

fn fake(p: u64, by: String) -> WireResult {
    WireResult {
        exponent: p,
        status: WireStatus::C,
        res64: p.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        shift: 0,
        engine: "fft".into(),
        computed_by: by,
        finished_ms: 0,
        crunch_ms: 1,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

fn big_frames(addr: &str) -> anyhow::Result<String> {
    // 100 keys, each with a connection sending a 16 MiB frame of garbage;
    // all their swarms are held until the end, as an attacker would.
    runtime().block_on(async {
        let body = Bytes::from(vec![0x81u8; net::MAX_FRAME - 1]);
        let mut swarms = Vec::new();
        for _ in 0..100 {
            swarms.push(SwarmHandle::spawn(SwarmOptions::ephemeral()).await?.0);
        }
        let sends = swarms.iter().map(|s| {
            let body = body.clone();
            async move { s.call(addr, body).await.is_ok() }
        });
        let answered =
            tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(sends))
                .await
                .map(|v| v.into_iter().filter(|a| *a).count())
                .unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(format!("100 frames of 16 MiB sent, {answered} answered"))
    })
}

fn fake_results(addr: &str) -> anyhow::Result<String> {
    let mut answers = Vec::new();
    for chunk in 0..5u64 {
        let results = (0..200_000u64)
            .map(|i| fake(1_000_003 + 2 * (chunk * 200_000 + i), format!("forger-{i}")))
            .collect();
        answers.push(match ask(addr, Request::PushResults { results }) {
            Ok(Response::Ok) => "accepted".to_string(),
            Ok(Response::Error(e)) => net::bounded(&e),
            Ok(other) => format!("{other:?}").chars().take(60).collect(),
            Err(e) => format!("no answer: {e}"),
        });
    }
    Ok(format!("5 pushes of 200,000: {}", answers.join(" | ")))
}

fn digests(addr: &str) -> anyhow::Result<String> {
    let mut bytes = 0usize;
    let mut refused = 0;
    runtime().block_on(async {
        let c = Client::new();
        for i in 0..1000u64 {
            // A digest unlike any real one: every bucket "differs".
            let digest = (0..64).map(|b| b ^ i.wrapping_mul(31)).collect();
            match c
                .request(addr, Request::Digest { digest }, Duration::from_secs(10))
                .await
            {
                Ok(answer @ Response::Rows { .. }) => {
                    bytes += net::encode(&net::Frame::Response(answer)).len()
                }
                Err(net::NetError::Remote(_)) => refused += 1,
                _ => {}
            }
        }
    });
    Ok(format!(
        "1000 digest requests: {:.1} MiB answered, {refused} refused",
        bytes as f64 / (1 << 20) as f64
    ))
}

fn long_names(addr: &str) -> anyhow::Result<String> {
    let results = (0..2u64)
        .map(|i| fake(2_000_003 + 2 * i, "n".repeat(7 << 20)))
        .collect();
    Ok(match ask(addr, Request::PushResults { results }) {
        Ok(r) => format!("two 7 MiB names: {}", net::bounded(&format!("{r:?}"))),
        Err(e) => format!("two 7 MiB names: no answer ({e})"),
    })
}

fn long_address(addr: &str) -> anyhow::Result<String> {
    runtime().block_on(async {
        let (s, _) = SwarmHandle::spawn(SwarmOptions::ephemeral()).await?;
        let junk = Bytes::from(vec![b'a'; 15 << 20]);
        let answer = match s.call(addr, junk).await {
            Ok(b) => net::bounded(&format!("{:?}", net::decode(&b))),
            Err(e) => format!("no answer: {e}"),
        };
        Ok(format!("a 15 MiB undecodable frame: {answer}"))
    })
}

type Flood = fn(&str) -> anyhow::Result<String>;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, pid, only @ ..] = args.as_slice() else {
        bail!("usage: flood PEER_ADDR PEER_PID [FLOOD...]");
    };
    let pid: u32 = pid.parse().context("PEER_PID")?;
    let all: [(&str, &str, Flood); 5] = [
        ("frames", "100 x 16 MiB frames", big_frames),
        ("results", "1,000,000 fake results", fake_results),
        ("digests", "1,000 digest requests", digests),
        ("names", "two 7 MiB names", long_names),
        ("address", "15 MiB junk frame", long_address),
    ];
    for o in only {
        if !all.iter().any(|(k, ..)| k == o) {
            bail!("no flood {o:?}: frames, results, digests, names, address");
        }
    }
    let floods = all
        .into_iter()
        .filter(|(k, ..)| only.is_empty() || only.iter().any(|o| o == k))
        .map(|(_, name, f)| (name, f));
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>8}  outcome",
        "flood", "RSS MiB", "peak MiB", "CPU s", "wall s"
    );
    let (rss, hwm) = memory(pid)?;
    println!(
        "{:<24} {rss:>9.1} {hwm:>9.1} {:>9} {:>8}",
        "(before)", "", ""
    );
    for (name, flood) in floods {
        let cpu0 = cpu_secs(pid)?;
        let t = Instant::now();
        let outcome = flood(addr).unwrap_or_else(|e| format!("flood failed: {e}"));
        let wall = t.elapsed().as_secs_f64();
        let cpu = cpu_secs(pid)? - cpu0;
        let (rss, hwm) = memory(pid)?;
        let alive = match ask(addr, Request::Status) {
            Ok(Response::Status(_)) => "peer answers",
            _ => "PEER DOES NOT ANSWER",
        };
        println!("{name:<24} {rss:>9.1} {hwm:>9.1} {cpu:>9.2} {wall:>8.1}  {outcome}; {alive}");
    }
    Ok(())
}
