//! 2,000 connections that never finish the handshake, against one live
//! peer whose connection caps are raised so that all of them are let in:
//! only the handshake limit can close them (`--idle-secs 3` makes it 3 s,
//! well before libp2p's own 10 s connection timeout). The peer must serve an honest
//! client while they are held, close every one of them, and come back to
//! the file descriptors and about the memory it had. Linux only (it reads
//! the peer's /proc). Every loop is bounded in count and time.

#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::sockets::{closed_by_peer, raise_fd_limit};
use common::{Peer, status, tmpdir};

/// Connections opened.
const FLOOD: usize = 2_000;

/// The peer's `--idle-secs`: its handshake limit is the smaller of this and
/// 10 s.
const IDLE_SECS: u64 = 3;

/// The first message of libp2p's protocol negotiation.
const MULTISTREAM: &[u8] = b"\x13/multistream/1.0.0\n";

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the peer's fds")
        .count()
}

/// (VmRSS, VmHWM) of `pid` in MiB.
fn memory_mib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the peer's status");
    let kib = |key: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect(key)
    };
    (kib("VmRSS:") / 1024, kib("VmHWM:") / 1024)
}

/// One connection that stops somewhere in the handshake: at once after
/// TCP, after the multistream header, or half way through the first Noise
/// message (its length says 32 bytes, 8 come).
fn half_open(addr: &str, kind: usize) -> Option<TcpStream> {
    let to = addr.parse().unwrap();
    let mut s =
        (0..3).find_map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok())?;
    match kind % 4 {
        0 | 1 => {}
        2 => s.write_all(MULTISTREAM).ok()?,
        _ => {
            s.write_all(MULTISTREAM).ok()?;
            s.write_all(b"\x07/noise\n").ok()?;
            s.write_all(&[0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8]).ok()?;
        }
    }
    s.set_nonblocking(true).unwrap();
    Some(s)
}

#[test]
fn connections_that_never_finish_the_handshake_are_closed_and_the_peer_serves_through_them() {
    let started = Instant::now();
    let limit = raise_fd_limit(FLOOD as u64 + 1_000);
    // In waves when the limit is low: each wave is closed before the next.
    let wave = FLOOD.min(limit.saturating_sub(300) as usize).max(100);
    let dir = tmpdir("half-open");
    let idle = IDLE_SECS.to_string();
    let cap = (FLOOD * 2).to_string();
    let peer = Peer::worker(
        &dir,
        "peer",
        None,
        &[
            "--threads",
            "0",
            "--idle-secs",
            &idle,
            "--max-connections",
            &cap,
            "--max-connections-per-source",
            &cap,
        ],
    );
    let (a, pid) = (peer.addr.as_str(), peer.pid());
    assert!(status(a).is_some(), "the peer answers before");
    std::thread::sleep(Duration::from_secs(1));
    let (base_fds, (base_rss, _)) = (fds(pid), memory_mib(pid));

    let handshake_limit = Duration::from_secs(IDLE_SECS.min(10));
    let (mut opened, mut peak_fds, mut peak_rss) = (0, 0, 0);
    let (mut slowest, mut closed_in) = (Duration::ZERO, Duration::ZERO);
    while opened < FLOOD {
        let n = wave.min(FLOOD - opened);
        let t = Instant::now();
        let mut held: Vec<TcpStream> = (0..n).filter_map(|i| half_open(a, opened + i)).collect();
        assert_eq!(held.len(), n, "connections refused at TCP level");
        opened += n;
        let opened_in = t.elapsed();

        // While the attacker holds them: they were let in (the caps are
        // above the flood, so each holds a descriptor until the handshake
        // limit), and an honest client is served.
        peak_fds = peak_fds.max(fds(pid));
        peak_rss = peak_rss.max(memory_mib(pid).0);
        let t_ask = Instant::now();
        assert!(
            status(a).is_some(),
            "the peer did not answer during the flood"
        );
        slowest = slowest.max(t_ask.elapsed());

        // The peer closes every one, within its handshake limit of the last
        // one opened and 4 s for a busy machine: before libp2p's own
        // connection timeout (10 s), so that it is the peer's limit that
        // is seen to work.
        let deadline = handshake_limit + Duration::from_secs(4);
        let mut open: Vec<usize> = (0..held.len()).collect();
        while !open.is_empty() && t.elapsed() < opened_in + deadline {
            open.retain(|&i| !closed_by_peer(&mut held[i]));
            std::thread::sleep(Duration::from_millis(200));
        }
        closed_in = closed_in.max(t.elapsed() - opened_in);
        assert!(
            open.is_empty(),
            "{} of {n} half-open connections still open {:?} after the last was opened",
            open.len(),
            t.elapsed() - opened_in
        );
        assert!(
            t.elapsed() >= handshake_limit.saturating_sub(Duration::from_millis(500)),
            "closed before the handshake limit: the caps refused them instead"
        );
    }
    assert!(
        peak_fds >= base_fds + wave.min(FLOOD) / 2,
        "the peer held at most {peak_fds} descriptors (from {base_fds}): the flood was not let in"
    );
    assert!(slowest < Duration::from_secs(10), "status took {slowest:?}");

    // After: the descriptors are given back and the memory stays bounded.
    let t = Instant::now();
    while fds(pid) > base_fds + 10 && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after_fds = fds(pid);
    let (rss, hwm) = memory_mib(pid);
    eprintln!(
        "{FLOOD} half-open connections in waves of {wave}: peer fds {base_fds} -> peak {peak_fds} -> {after_fds}; \
         RSS {base_rss} MiB -> peak {peak_rss} (VmHWM {hwm}) -> {rss} MiB; \
         slowest status during {slowest:?}; all closed {closed_in:?} after the last was opened; \
         {:?} in all",
        started.elapsed()
    );
    assert!(
        after_fds <= base_fds + 10,
        "{after_fds} fds open after, {base_fds} before"
    );
    assert!(
        hwm <= base_rss + 64,
        "peak RSS {hwm} MiB for {FLOOD} half-open connections (from {base_rss} MiB)"
    );
    let st = status(a).expect("the peer answers after");
    assert!(
        st.connections <= 2,
        "{} connections open after",
        st.connections
    );
    drop(peer);
}
