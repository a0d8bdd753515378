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
//! Floods, one after another: 100 connections each sending one 16 MiB
//! frame; 1,000,000 made-up results in 5 pushes; 1,000 anti-entropy digest
//! requests claiming every bucket differs; two results with 7 MiB names (9 MiB ones no longer fit a frame);
//! a hello carrying a 15 MiB address. After each one the peer must still
//! answer `status`. For each: peak and current RSS (VmHWM, VmRSS) and the
//! CPU seconds the peer spent (utime + stime) during it.
//!
//! Only for a peer of your own on loopback: the results pushed are made up
//! (use a data directory of its own).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mersenne_worker::net::{self, Frame, Request, Response, WireResult, WireStatus};

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

fn frame(s: &mut TcpStream, f: &Frame) -> std::io::Result<()> {
    let b = net::encode(f);
    s.write_all(&(b.len() as u32).to_be_bytes())?;
    s.write_all(&b)
}

/// A connection that has said hello.
fn hello(addr: &str) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    frame(
        &mut s,
        &Frame::Hello {
            version: net::PROTOCOL_VERSION,
        },
    )?;
    read_frame(&mut s)?;
    Ok(s)
}

fn read_frame(s: &mut TcpStream) -> anyhow::Result<Frame> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > net::MAX_FRAME {
        bail!("answer of {n} bytes");
    }
    let mut b = vec![0u8; n];
    s.read_exact(&mut b)?;
    Ok(net::decode(&b)?)
}

/// One request on a fresh connection; the answer, or why none came.
fn ask(addr: &str, req: Request) -> anyhow::Result<Response> {
    let mut s = hello(addr)?;
    frame(&mut s, &Frame::Request(req))?;
    match read_frame(&mut s)? {
        Frame::Response(r) => Ok(r),
        other => bail!("unexpected {other:?}"),
    }
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
    }
}

fn big_frames(addr: &str) -> anyhow::Result<String> {
    // Each connection announces a 16 MiB frame and sends it whole; they are
    // all held open until the end, as an attacker would.
    let body = vec![0x81u8; net::MAX_FRAME - 1];
    let mut held = Vec::new();
    let mut sent = 0;
    for _ in 0..100 {
        let Ok(mut s) = hello(addr) else { continue };
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        if s.write_all(&((body.len()) as u32).to_be_bytes()).is_ok() && s.write_all(&body).is_ok() {
            sent += 1;
        }
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    Ok(format!("{sent} of 100 frames of 16 MiB written"))
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
    let mut s = hello(addr)?;
    for i in 0..1000u64 {
        // A digest unlike any real one: every bucket "differs".
        let digest = (0..64).map(|b| b ^ i.wrapping_mul(31)).collect();
        frame(&mut s, &Frame::Request(Request::Digest { digest }))?;
        match read_frame(&mut s)? {
            Frame::Response(answer @ Response::Rows { .. }) => {
                bytes += net::encode(&Frame::Response(answer)).len()
            }
            Frame::Response(Response::Error(_)) => refused += 1,
            _ => {}
        }
    }
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
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let f = Frame::HelloAck {
        version: net::PROTOCOL_VERSION,
        node: "a".repeat(15 << 20),
    };
    frame(&mut s, &f)?;
    let closed = matches!(s.read(&mut [0u8; 64]), Ok(0) | Err(_));
    Ok(format!(
        "a 15 MiB address in a hello: connection closed = {closed}"
    ))
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
        ("address", "15 MiB address", long_address),
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
