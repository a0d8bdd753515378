//! Floods a running peer the way issue 11's attacker did, speaking the real
//! wire protocol, and prints the peer's memory and CPU around each flood:
//!
//! ```sh
//! worker --listen 127.0.0.1:7900 --threads 0 --data /tmp/flood-peer &
//! cargo run -p mersenne-worker --profile test --example flood -- 127.0.0.1:7900 $!
//! ```
//!
//! Name floods after the pid to run only those: `submit18`, `submit64`,
//! `frames`, `results`, `digests`, `names`, `address`, `forgeries`,
//! `halfopen`.
//!
//! Floods, one after another: one `Submit` of 100 exponents near 10^18 and
//! one near 2^64 (each once took a peer down); 100 connections (each a
//! swarm with a key of its own) each sending one 16 MiB frame of garbage;
//! 1,000,000 made-up results in 5 pushes; 1,000 anti-entropy digest
//! requests claiming every bucket differs; two results with 7 MiB names
//! (9 MiB ones no longer fit a frame); a ring message from a 15 MiB
//! address (the old transport's 15 MiB address in a hello; addresses no
//! longer travel in a handshake); 50,000 ring messages in another peer's
//! name and 10,000 raw record writes of 1 KiB garbage, in batches of 512;
//! 2,000 connections that never finish the handshake, held until the peer
//! closes them (at most 15 s). After each one the peer must still answer
//! `status`. For each: peak and current RSS (VmHWM, VmRSS) and the CPU
//! seconds the peer spent (utime + stime) during it.
//!
//! Only for a peer of your own on loopback: the results pushed are made up
//! (use a data directory of its own).

use std::time::{Duration, Instant};

#[path = "../tests/common/sockets.rs"]
mod sockets;

use anyhow::{Context, bail};
use bytes::Bytes;
use mersenne_common::ring::{Body, Id, Message, Peer as RingPeer, Record, StoreOp};
use mersenne_worker::net::{
    self, Client, Frame, NodeAddr, RING_BATCH_MAX, Request, Response, RingBatch, SwarmHandle,
    SwarmOptions, WireResult, WireStatus,
};
use sockets::{closed_by_peer, raise_fd_limit};

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

fn submit(addr: &str, from: u64, to: u64) -> String {
    let t = Instant::now();
    let req = Request::Submit {
        from,
        to,
        grant: None,
    };
    let answer = runtime().block_on(async {
        Client::new()
            .request(addr, req, Duration::from_secs(60))
            .await
    });
    let answer = match answer {
        Err(net::NetError::Remote(e)) => format!("refused: {}", net::bounded(&e)),
        Ok(other) => net::bounded(&format!("{other:?}")),
        Err(e) => format!("no answer: {e}"),
    };
    format!("{answer} ({:.2} s)", t.elapsed().as_secs_f64())
}

fn submit_1e18(addr: &str) -> anyhow::Result<String> {
    Ok(submit(
        addr,
        1_000_000_000_000_000_000,
        1_000_000_000_000_000_099,
    ))
}

fn submit_2_64(addr: &str) -> anyhow::Result<String> {
    Ok(submit(addr, u64::MAX - 99, u64::MAX))
}

/// A ring message from `key`'s own ring id (or, `forged`, another one).
fn ring_message(
    key: &libp2p::identity::Keypair,
    forged: Option<u64>,
    body: Body<NodeAddr>,
) -> net::RingMessage {
    let public = key
        .public()
        .try_into_ed25519()
        .expect("an ed25519 key")
        .to_bytes();
    let own = mersenne_common::work::peer_ring_id(&public);
    Message {
        from: RingPeer {
            id: Id(forged.unwrap_or(own)),
            addr: NodeAddr::try_from("127.0.0.1:9").expect("a short address"),
        },
        body,
    }
}

fn long_address(addr: &str) -> anyhow::Result<String> {
    runtime().block_on(async {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let opts = SwarmOptions {
            keypair: key.clone(),
            ..SwarmOptions::ephemeral()
        };
        let (s, _) = SwarmHandle::spawn(opts).await?;
        // A valid ring frame whose address is swapped for 15 MiB of text
        // (a NodeAddr cannot hold one, so it is spliced into the bytes).
        let mut frame = net::encode(&Frame::Ring(RingBatch(vec![ring_message(
            &key,
            None,
            Body::Notify,
        )])))
        .to_vec();
        let short = b"\xab127.0.0.1:9";
        let at = frame
            .windows(short.len())
            .position(|w| w == short)
            .context("the address in the frame")?;
        let long = vec![b'9'; 15 << 20];
        let header = [&[0xdb][..], &(long.len() as u32).to_be_bytes()].concat();
        frame.splice(at..at + short.len(), header.into_iter().chain(long));
        let answer = match s.call(addr, Bytes::from(frame)).await {
            Ok(b) => match net::decode(&b) {
                Ok(Frame::Response(Response::Error(e))) => {
                    format!("refused with a {}-byte error", e.len())
                }
                other => net::bounded(&format!("{other:?}")),
            },
            Err(e) => format!("no answer: {e}"),
        };
        Ok(format!("a ring message from a 15 MiB address: {answer}"))
    })
}

fn forgeries(addr: &str) -> anyhow::Result<String> {
    // 100 and 20 batches of 500: whole batches (at most RING_BATCH_MAX).
    const BATCH: usize = 500;
    const _: () = assert!(BATCH <= RING_BATCH_MAX);
    let before = match ask(addr, Request::Status)? {
        Response::Status(s) => s,
        _ => bail!("no status"),
    };
    runtime().block_on(async {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let opts = SwarmOptions {
            keypair: key.clone(),
            ..SwarmOptions::ephemeral()
        };
        let (s, _) = SwarmHandle::spawn(opts).await?;
        let mut n = 0u64;
        // Notify and Leaving in other peers' names: these once moved the
        // ring (a victim's owned records fell from 97 to 0).
        for _ in 0..100 {
            let batch = (0..BATCH)
                .map(|_| {
                    n += 1;
                    let body = if n.is_multiple_of(2) {
                        Body::Notify
                    } else {
                        Body::Leaving {
                            predecessor: None,
                            successors: Vec::new(),
                            records: Vec::new(),
                        }
                    };
                    ring_message(&key, Some(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)), body)
                })
                .collect();
            s.call(addr, net::encode(&Frame::Ring(RingBatch(batch))))
                .await?;
        }
        // Raw writes of garbage under the attacker's own id: once they
        // squatted, overwrote and locked unit records.
        for _ in 0..20 {
            let batch = (0..BATCH)
                .map(|_| {
                    n += 1;
                    let key_id = Id(n.wrapping_mul(0xff51_afd7_ed55_8ccd));
                    let value = vec![0x5a; 1024];
                    let op = if n.is_multiple_of(2) {
                        StoreOp::Put { key: key_id, value }
                    } else {
                        StoreOp::Merge {
                            record: Record {
                                key: key_id,
                                value,
                                version: u64::MAX,
                            },
                        }
                    };
                    ring_message(&key, None, Body::Store { rid: n, op })
                })
                .collect();
            s.call(addr, net::encode(&Frame::Ring(RingBatch(batch))))
                .await?;
        }
        anyhow::Ok(())
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let after = match ask(addr, Request::Status)? {
        Response::Status(s) => s,
        _ => bail!("no status"),
    };
    Ok(format!(
        "{} refused as forged, {} record writes refused, {} records held (was {})",
        after.ring_forged - before.ring_forged,
        after.refused_records - before.refused_records,
        after.held,
        before.held
    ))
}

fn half_open(addr: &str) -> anyhow::Result<String> {
    use std::io::Write;
    const N: usize = 2_000;
    let limit = raise_fd_limit(N as u64 + 500);
    let n = N.min(limit.saturating_sub(200) as usize);
    let to: std::net::SocketAddr = addr.parse().context("a host:port address")?;
    let t = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        // Silent after TCP, after the multistream header, or half way
        // through the first Noise message.
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5)) else {
            failed += 1;
            continue;
        };
        if i % 4 >= 2 {
            let _ = s.write_all(b"\x13/multistream/1.0.0\n");
        }
        if i % 4 == 3 {
            let _ = s.write_all(b"\x07/noise\n\x00\x20\x01\x02\x03\x04");
        }
        s.set_nonblocking(true)?;
        held.push(s);
    }
    let opened = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let mut open: Vec<usize> = (0..held.len()).collect();
    open.retain(|&i| !closed_by_peer(&mut held[i]));
    let at_once = held.len() - open.len();
    while !open.is_empty() && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        open.retain(|&i| !closed_by_peer(&mut held[i]));
    }
    Ok(format!(
        "{} half-open connections ({failed} not connected) opened in {:.1} s: {at_once} closed at once, \
         {} by {:.1} s, {} still open",
        held.len(),
        opened.as_secs_f64(),
        held.len() - at_once - open.len(),
        t.elapsed().as_secs_f64(),
        open.len()
    ))
}

type Flood = fn(&str) -> anyhow::Result<String>;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, pid, only @ ..] = args.as_slice() else {
        bail!("usage: flood PEER_ADDR PEER_PID [FLOOD...]");
    };
    let pid: u32 = pid.parse().context("PEER_PID")?;
    let all: [(&str, &str, Flood); 9] = [
        ("submit18", "Submit near 10^18", submit_1e18),
        ("submit64", "Submit near 2^64", submit_2_64),
        ("frames", "100 x 16 MiB frames", big_frames),
        ("results", "1,000,000 fake results", fake_results),
        ("digests", "1,000 digest requests", digests),
        ("names", "two 7 MiB names", long_names),
        ("address", "15 MiB address", long_address),
        ("forgeries", "60,000 ring forgeries", forgeries),
        ("halfopen", "2,000 half-open conns", half_open),
    ];
    for o in only {
        if !all.iter().any(|(k, ..)| k == o) {
            let names: Vec<&str> = all.iter().map(|(k, ..)| *k).collect();
            bail!("no flood {o:?}: {}", names.join(", "));
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
