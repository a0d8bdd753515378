//! The grid over real sockets: real `worker` and `coordinator` processes on
//! loopback, free ports, every wait bounded, and only our own children
//! killed (a guard kills each on drop).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mersenne_common::ll::Status;
use mersenne_common::primes::primes_in;
use mersenne_common::work::UnitResult;
use mersenne_common::work::unit_key;
use mersenne_worker::net::{self, NodeStatus, Request, Response, UnitRow};
use num_bigint::BigUint;

/// Published Mersenne prime exponents (the oracle for statuses).
const KNOWN: &[u64] = &[
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423,
    9689, 9941, 11213, 19937, 21701, 23209, 44497,
];

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("grid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn coordinator_exe() -> PathBuf {
    let worker = PathBuf::from(env!("CARGO_BIN_EXE_worker"));
    let exe = worker.with_file_name(format!("coordinator{}", std::env::consts::EXE_SUFFIX));
    if !exe.exists() {
        // `cargo test -p mersenne-worker` alone does not build the other
        // package's binary; build it once.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args([
                "build",
                "-p",
                "mersenne-coordinator",
                "--bin",
                "coordinator",
            ])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    exe
}

/// A child process killed when dropped.
struct Peer {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Peer {
    fn start(exe: &Path, args: &[&str], data: &Path, log: &Path) -> Peer {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(exe)
            .args(args)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("peer did not report its address in 30 s");
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Peer {
            child,
            addr,
            log: log.to_path_buf(),
        }
    }

    fn worker(dir: &Path, name: &str, join: Option<&str>, extra: &[&str]) -> Peer {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--lease-secs",
            "2",
            "--checkpoint-secs",
            "1",
            "--gossip-ms",
            "200",
        ];
        if let Some(j) = join {
            args.extend(["--join", j]);
        }
        // A flag in `extra` replaces the default of the same name.
        for pair in extra.chunks(2) {
            match args.iter().position(|a| *a == pair[0]) {
                Some(i) => args[i + 1] = pair[1],
                None => args.extend(pair),
            }
        }
        Peer::start(
            Path::new(env!("CARGO_BIN_EXE_worker")),
            &args,
            &dir.join(name),
            &dir.join(format!("{name}.log")),
        )
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ask(addr: &str, req: Request) -> Option<Response> {
    rt().block_on(net::one_request(addr, req)).ok()
}

fn table(addr: &str) -> Option<Vec<UnitResult>> {
    match ask(
        addr,
        Request::Results {
            from: 0,
            to: u64::MAX,
        },
    )? {
        Response::Results { results, .. } => {
            let mut results: Vec<UnitResult> = results.into_iter().map(UnitResult::from).collect();
            results.sort_by_key(|r| (r.exponent, r.computed_by.clone(), r.shift));
            Some(results)
        }
        _ => None,
    }
}

fn status(addr: &str) -> Option<NodeStatus> {
    match ask(addr, Request::Status)? {
        Response::Status(s) => Some(*s),
        _ => None,
    }
}

fn units(addr: &str) -> Option<Vec<UnitRow>> {
    match ask(
        addr,
        Request::Units {
            from: 0,
            to: u64::MAX,
        },
    )? {
        Response::Units(rows) => Some(rows),
        _ => None,
    }
}

fn id_of(s: &NodeStatus) -> u64 {
    u64::from_str_radix(&s.id, 16).unwrap()
}

/// The live ring as its members see it: every node's predecessor and first
/// successor are its neighbours in id order, and its successor list holds
/// all the others (r = 8 is more than these rings have).
fn ring_formed(addrs: &[&str]) -> bool {
    let Some(mut st) = addrs.iter().map(|a| status(a)).collect::<Option<Vec<_>>>() else {
        return false;
    };
    st.sort_by_key(id_of);
    let n = st.len();
    (0..n).all(|k| {
        let next = &st[(k + 1) % n].addr;
        let prev = &st[(k + n - 1) % n].addr;
        st[k].member
            && st[k].successors.len() == n - 1
            && st[k].successors.first().map(|p| &p.0) == Some(next)
            && st[k].predecessor.as_ref().map(|p| &p.0) == Some(prev)
    })
}

fn submit(addr: &str, from: u64, to: u64) -> (u64, u64) {
    match ask(addr, Request::Submit { from, to }) {
        Some(Response::Created { created, existed }) => (created, existed),
        other => panic!("submit failed: {other:?}"),
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Exponents with a result in the table.
fn exponents(t: &[UnitResult]) -> Vec<u64> {
    let mut v: Vec<u64> = t.iter().map(|r| r.exponent).collect();
    v.dedup();
    v
}

/// res64 of M_p by plain `%` arithmetic: an independent code path from the
/// engines' fold reduction and shifts.
fn res64_oracle(p: u64) -> u64 {
    let m = (BigUint::from(1u8) << p) - 1u8;
    let mut s = BigUint::from(4u8);
    for _ in 0..p - 2 {
        s = (&s * &s + &m - 2u8) % &m;
    }
    s.iter_u64_digits().next().unwrap_or(0)
}

/// Every unit in `from..=to` has a result, every result is right: statuses
/// against the published list, res64 against the oracle on a sample, and
/// duplicates agree.
fn check_table(t: &[UnitResult], from: u64, to: u64) {
    assert_eq!(exponents(t), primes_in(from, to), "missing or extra units");
    let mut by_p: BTreeMap<u64, Vec<&UnitResult>> = BTreeMap::new();
    for r in t {
        by_p.entry(r.exponent).or_default().push(r);
    }
    for (p, rs) in &by_p {
        for r in rs {
            let want = if KNOWN.contains(p) {
                Status::Prime
            } else {
                Status::Composite
            };
            assert_eq!(r.status, want, "wrong status for M{p}");
            assert_eq!(r.res64, rs[0].res64, "results for M{p} disagree");
        }
    }
    for p in [11u64, 23, 29, 37, 101, 211, 523, 1009] {
        if let Some(rs) = by_p.get(&p) {
            assert_eq!(rs[0].res64, res64_oracle(p), "res64 of M{p}");
        }
    }
}

#[test]
fn coordinator_and_four_workers_agree_and_a_late_joiner_catches_up() {
    let dir = tmpdir("agree");
    let coord = Peer::start(
        &coordinator_exe(),
        &["--listen", "127.0.0.1:0", "--gossip-ms", "200"],
        &dir.join("coord"),
        &dir.join("coord.log"),
    );
    let workers: Vec<Peer> = (0..4)
        .map(|i| Peer::worker(&dir, &format!("w{i}"), Some(&coord.addr), &[]))
        .collect();
    let mut addrs: Vec<&str> = workers.iter().map(|w| w.addr.as_str()).collect();
    addrs.push(&coord.addr);
    wait_for("the ring", Duration::from_secs(30), || ring_formed(&addrs));
    // Any peer accepts a submission; a second submission creates nothing.
    let (from, to) = (2, 1300);
    let units = primes_in(from, to).len() as u64;
    assert_eq!(submit(&workers[1].addr, from, to), (units, 0));
    assert_eq!(submit(&coord.addr, from, to), (0, units));
    let mut all: Vec<&Peer> = workers.iter().collect();
    all.push(&coord);
    wait_for("every table complete", Duration::from_secs(90), || {
        all.iter()
            .all(|p| table(&p.addr).is_some_and(|t| exponents(&t).len() as u64 == units))
    });
    wait_for("tables identical", Duration::from_secs(20), || {
        let t0 = table(&coord.addr);
        all.iter().all(|p| table(&p.addr) == t0)
    });
    let t = table(&coord.addr).unwrap();
    check_table(&t, from, to);
    // The coordinator crunched nothing; at least two workers did.
    assert!(t.iter().all(|r| r.computed_by != coord.addr));
    let crunchers: std::collections::HashSet<&str> =
        t.iter().map(|r| r.computed_by.as_str()).collect();
    assert!(crunchers.len() >= 2, "work was not spread: {crunchers:?}");
    // A peer joining late receives the whole table.
    let late = Peer::worker(&dir, "late", Some(&workers[2].addr), &["--threads", "0"]);
    wait_for("late joiner has the table", Duration::from_secs(30), || {
        table(&late.addr) == Some(t.clone())
    });
    drop(all);
    drop(workers);
    drop(coord);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_peer_killed_mid_run_is_survived() {
    let dir = tmpdir("sigkill");
    let a = Peer::worker(&dir, "a", None, &[]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    let mut victim = Peer::worker(&dir, "victim", Some(&a.addr), &[]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr, &victim.addr])
    });
    let (from, to) = (2, 2400);
    let units = primes_in(from, to).len();
    submit(&b.addr, from, to);
    // Kill it while it holds a lease and has finished some units.
    wait_for("victim busy", Duration::from_secs(60), || {
        status(&victim.addr).is_some_and(|s| s.finished >= 3 && !s.crunching.is_empty())
    });
    let held = status(&victim.addr).unwrap();
    victim.kill();
    wait_for(
        "survivors finish every unit",
        Duration::from_secs(120),
        || {
            [&a, &b]
                .iter()
                .all(|p| table(&p.addr).is_some_and(|t| exponents(&t).len() == units))
        },
    );
    wait_for("tables converge", Duration::from_secs(20), || {
        table(&a.addr) == table(&b.addr)
    });
    let t = table(&a.addr).unwrap();
    check_table(&t, from, to);
    // Each unit the victim was crunching got done: by a survivor, unless
    // the victim finished it in the moment between the status read and the
    // kill (units are short with the FFT engine, so that race is real).
    for p in held.crunching {
        let by_victim = t
            .iter()
            .any(|r| r.exponent == p && r.computed_by == victim.addr);
        assert!(
            by_victim
                || t.iter()
                    .any(|r| r.exponent == p && r.computed_by != victim.addr),
            "M{p} was not taken over"
        );
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restarted_peer_resumes_its_checkpoint_and_catches_up() {
    let dir = tmpdir("restart");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    // B's lease is long, so nobody else takes its unit while it is down.
    let b_args = ["--lease-secs", "120"];
    let mut b = Peer::worker(&dir, "b", Some(&a.addr), &b_args);
    let b_addr = b.addr.clone();
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    let big = 44497;
    submit(&a.addr, big, big);
    let ckpt = dir
        .join("b")
        .join("checkpoints")
        .join(format!("{big}.ckpt"));
    wait_for("a checkpoint", Duration::from_secs(60), || ckpt.exists());
    b.kill();
    // While B is away, C crunches a small range; B misses those results.
    let c = Peer::worker(&dir, "c", Some(&a.addr), &[]);
    let (from, to) = (2, 400);
    let small = primes_in(from, to);
    submit(&c.addr, from, to);
    wait_for("small range done", Duration::from_secs(60), || {
        table(&a.addr).is_some_and(|t| exponents(&t).len() == small.len())
    });
    // Same address, same data directory.
    let b = Peer::worker(
        &dir,
        "b",
        Some(&a.addr),
        &["--lease-secs", "120", "--listen", &b_addr],
    );
    assert_eq!(b.addr, b_addr);
    wait_for(
        "B finishes M44497 and catches up",
        Duration::from_secs(120),
        || table(&b.addr).is_some_and(|t| exponents(&t).len() == small.len() + 1),
    );
    let t = table(&b.addr).unwrap();
    let r = t.iter().find(|r| r.exponent == big).unwrap();
    assert_eq!(r.status, Status::Prime);
    assert_eq!(r.computed_by, b_addr);
    let log = std::fs::read_to_string(&b.log).unwrap();
    let resumed = log
        .lines()
        .find(|l| l.contains("resumed checkpoint"))
        .expect("B did not resume from its checkpoint");
    let iteration: u64 = resumed
        .split("iteration=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(iteration > 0 && iteration < big - 2, "{resumed}");
    // B's record of M44497 from its disk was older than the ring's: the
    // ring kept its own (nothing restored over it).
    let restored = log
        .lines()
        .find(|l| l.contains("unit records from disk are back in the ring"))
        .expect("B did not restore its records");
    assert!(
        restored.contains("restored=0") && restored.contains("already_in_ring=1"),
        "{restored}"
    );
    let small_rows: Vec<UnitResult> = t.into_iter().filter(|r| r.exponent != big).collect();
    check_table(&small_rows, from, to);
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends raw bytes and reports whether the peer closed the connection.
fn closed_after(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 256];
    // Drain anything the peer sent (a HelloAck) until it closes.
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return e.kind() == std::io::ErrorKind::ConnectionReset;
            }
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn garbage_oversized_and_wrong_version_frames_are_refused() {
    let dir = tmpdir("garbage");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    // Garbage where the hello should be.
    assert!(closed_after(&a.addr, &frame(b"\xc1 not messagepack")));
    // A length header far above the cap.
    assert!(closed_after(&a.addr, &(1u32 << 30).to_be_bytes()));
    // The wrong protocol version.
    let hello = rmp_serde::to_vec(&net::Frame::Hello { version: 999 }).unwrap();
    assert!(closed_after(&a.addr, &frame(&hello)));
    // A good hello followed by garbage.
    let hello = rmp_serde::to_vec(&net::Frame::Hello {
        version: net::PROTOCOL_VERSION,
    })
    .unwrap();
    let mut bytes = frame(&hello);
    bytes.extend(frame(b"\xff\xff\xff"));
    assert!(closed_after(&a.addr, &bytes));
    // The node still works.
    assert_eq!(submit(&a.addr, 2, 100), (25, 0));
    assert!(status(&a.addr).is_some());
    let log = std::fs::read_to_string(&a.log).unwrap();
    for reason in [
        "undecodable frame",
        "protocol version 999",
        "frame size too big",
    ] {
        assert!(log.contains(reason), "no {reason:?} in log:\n{log}");
    }
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_shows_the_ring_and_each_record_sits_at_its_keys_successor() {
    let dir = tmpdir("status");
    let no_crunch = ["--threads", "0"];
    let first = Peer::worker(&dir, "n0", None, &no_crunch);
    let mut peers = vec![first];
    for i in 1..4 {
        let via = peers[i - 1].addr.clone();
        peers.push(Peer::worker(&dir, &format!("n{i}"), Some(&via), &no_crunch));
    }
    let addrs: Vec<&str> = peers.iter().map(|p| p.addr.as_str()).collect();
    wait_for("the ring", Duration::from_secs(30), || ring_formed(&addrs));
    // Fingers are fixed one per period: give them a few periods.
    wait_for("fingers", Duration::from_secs(30), || {
        addrs
            .iter()
            .all(|a| status(a).is_some_and(|s| s.fingers > 0 && s.finger_nodes > 0))
    });
    let (from, to) = (2, 3000);
    let ps = primes_in(from, to);
    assert_eq!(submit(addrs[2], from, to), (ps.len() as u64, 0));
    // The successor of each key, from the ids the nodes report.
    let mut ring: Vec<(u64, String)> = addrs
        .iter()
        .map(|a| {
            let s = status(a).unwrap();
            assert!(s.predecessor.is_some() && !s.successors.is_empty(), "{s:?}");
            (id_of(&s), s.addr)
        })
        .collect();
    ring.sort();
    let successor =
        |key: u64| -> &str { &ring.iter().find(|(id, _)| *id >= key).unwrap_or(&ring[0]).1 };
    let held: BTreeMap<String, Vec<UnitRow>> = addrs
        .iter()
        .map(|a| (a.to_string(), units(a).unwrap()))
        .collect();
    for p in &ps {
        let owner = successor(unit_key(*p));
        let row = held[owner]
            .iter()
            .find(|r| r.exponent == *p)
            .unwrap_or_else(|| panic!("M{p} is not at its key's successor {owner}"));
        assert!(row.owned, "{owner} holds M{p} but does not own it");
        // Nobody else claims to own it; the others hold replicas.
        for (a, rows) in &held {
            if a != owner {
                assert!(!rows.iter().any(|r| r.exponent == *p && r.owned));
            }
        }
    }
    // Replicated: with r = 8 on a ring of 4, every node ends up with a copy.
    wait_for("replicas everywhere", Duration::from_secs(20), || {
        addrs
            .iter()
            .all(|a| units(a).is_some_and(|u| u.len() == ps.len()))
    });
    let owned: usize = addrs.iter().map(|a| status(a).unwrap().owned).sum();
    assert_eq!(owned, ps.len());
    drop(peers);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_checkpoints_gives_the_lease_back_and_leaves() {
    let dir = tmpdir("leave");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    // B's lease is long: if it did not give the unit back on leaving,
    // nobody could take it over within this test's limits.
    let mut b = Peer::worker(&dir, "b", Some(&a.addr), &["--lease-secs", "300"]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    let big = 44497;
    submit(&a.addr, big, big);
    let (from, to) = (2, 300);
    let small = primes_in(from, to);
    submit(&a.addr, from, to);
    wait_for("B crunching M44497", Duration::from_secs(60), || {
        status(&b.addr).is_some_and(|s| s.crunching.contains(&big))
    });
    let ok = Command::new("kill")
        .args(["-TERM", &b.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let t = Instant::now();
    let code = loop {
        if let Some(c) = b.child.try_wait().unwrap() {
            break c;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "B did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "exit status {code:?}");
    let ckpt = dir
        .join("b")
        .join("checkpoints")
        .join(format!("{big}.ckpt"));
    assert!(ckpt.exists(), "no checkpoint on the way out");
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(log.contains("left the ring"), "{log}");
    // A alone now: B's hand-over and the neighbours' splice make it the
    // owner of every key, with no unit lost.
    wait_for("A owns everything", Duration::from_secs(10), || {
        status(&a.addr).is_some_and(|s| {
            s.successors.is_empty() && s.owned == small.len() + 1 && s.held == small.len() + 1
        })
    });
    // The unit is free again at once: C takes it over long before B's
    // lease would have run out, and every unit gets done.
    let c = Peer::worker(&dir, "c", Some(&a.addr), &[]);
    wait_for("C finishes everything", Duration::from_secs(120), || {
        table(&c.addr).is_some_and(|t| exponents(&t).len() == small.len() + 1)
    });
    let t = table(&c.addr).unwrap();
    let r = t.iter().find(|r| r.exponent == big).unwrap();
    assert_eq!(r.status, Status::Prime);
    assert_eq!(r.computed_by, c.addr);
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for a child to exit, bounded; its exit status.
fn wait_exit(p: &mut Peer, limit: Duration) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(c) = p.child.try_wait().unwrap() {
            return c;
        }
        assert!(t.elapsed() < limit, "peer did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unit_records_survive_a_restart_of_the_whole_grid() {
    let dir = tmpdir("wholegrid");
    let mut a = Peer::worker(&dir, "a", None, &[]);
    let mut b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    // M21701 keeps the grid busy for a while, so both peers stop with
    // units left: some crunched, some claimed, some never started.
    let big = 21701;
    let (from, to) = (2, 2000);
    let mut all = primes_in(from, to);
    all.push(big);
    assert_eq!(submit(&a.addr, big, big), (1, 0));
    assert_eq!(submit(&b.addr, from, to), (all.len() as u64 - 1, 0));
    wait_for("some results", Duration::from_secs(60), || {
        table(&a.addr).is_some_and(|t| exponents(&t).len() >= 60)
    });
    let done_before = exponents(&table(&a.addr).unwrap()).len();
    assert!(done_before < all.len(), "the grid finished before the stop");
    eprintln!("{done_before} of {} units done at the stop", all.len());
    // Both at once: A by SIGTERM (the shutdown write), B by SIGKILL (only
    // the periodic writes count).
    let ok = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    b.kill();
    let code = wait_exit(&mut a, Duration::from_secs(40));
    assert!(code.success(), "A's exit status {code:?}");
    // New ports, so new ids: the records land at different owners than
    // before, and B's leases (2 s) have lapsed by the time anyone looks.
    let a = Peer::worker(&dir, "a", None, &[]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    wait_for("the ring again", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    wait_for(
        "every unit finished after the restart",
        Duration::from_secs(180),
        || {
            [&a.addr, &b.addr]
                .iter()
                .all(|p| table(p).is_some_and(|t| exponents(&t).len() == all.len()))
        },
    );
    for p in [&a.addr, &b.addr] {
        let t = table(p).unwrap();
        let small: Vec<UnitResult> = t.iter().filter(|r| r.exponent != big).cloned().collect();
        check_table(&small, from, to);
        let r = t.iter().find(|r| r.exponent == big).unwrap();
        assert_eq!(r.status, Status::Prime);
    }
    // Every record is back and ends Done (no unit forgotten, none reset).
    wait_for("all records Done", Duration::from_secs(30), || {
        units(&a.addr).is_some_and(|rows| {
            let mut ps: Vec<u64> = rows.iter().map(|r| r.exponent).collect();
            ps.sort();
            let mut want = all.clone();
            want.sort();
            ps == want && rows.iter().all(|r| r.state == net::WireUnitState::Done)
        })
    });
    let log = std::fs::read_to_string(&a.log).unwrap();
    for l in log.lines().filter(|l| l.contains("back in the ring")) {
        eprintln!("{l}");
    }
    assert!(
        log.contains("unit records from disk are back in the ring"),
        "A did not restore its records"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn worker_local_stops_its_peers_gracefully_on_ctrl_c() {
    let dir = tmpdir("localint");
    let data = dir.join("data");
    let logf = std::fs::File::create(dir.join("local.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args([
            "local",
            "--nodes",
            "2",
            "--threads",
            "2",
            "--range",
            "2-30000",
        ])
        .arg("--data")
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(logf)
        .spawn()
        .unwrap();
    let pid = child.id();
    // Reads stdout on a thread so that the waits below stay bounded.
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let t = Instant::now();
    while !lines.iter().any(|l: &String| l.starts_with("submitted:")) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no submit: {lines:?}"
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    // Units (the largest exponents first) are in progress on both threads.
    std::thread::sleep(Duration::from_secs(2));
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let t = Instant::now();
    let code = loop {
        if let Some(c) = child.try_wait().unwrap() {
            break c;
        }
        if t.elapsed() > Duration::from_secs(45) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("worker local did not exit within 45 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "exit status {code:?}");
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(l);
    }
    let text = lines.join("\n");
    for needle in [
        "interrupted after",
        "Mersenne primes found",
        "units in",
        "stopped 2 peers in",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let log = std::fs::read_to_string(dir.join("local.log")).unwrap();
    assert_eq!(log.matches("left the ring").count(), 2, "{log}");
    // The units in progress were checkpointed, and their records are on
    // disk for the next run with the same --data.
    let ckpts: usize = (0..2)
        .map(|i| {
            std::fs::read_dir(data.join(format!("peer{i}")).join("checkpoints"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum();
    assert!(ckpts > 0, "no checkpoint written on Ctrl-C");
    let held: usize = (0..2)
        .map(|i| {
            mersenne_worker::db::ResultDb::open(&data.join(format!("peer{i}")))
                .unwrap()
                .load_records()
                .unwrap()
                .len()
        })
        .max()
        .unwrap();
    assert_eq!(held, primes_in(2, 30000).len(), "records on disk");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `worker local` to completion and returns its stdout.
fn run_local(data: &Path, range: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["local", "--nodes", "2", "--threads", "2", "--range", range])
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "worker local {range}: {code:?}");
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("worker local {range} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn worker_local_with_reused_data_counts_only_this_runs_units() {
    let dir = tmpdir("localreuse");
    let data = dir.join("data");
    let first = run_local(&data, "2-600");
    let before = primes_in(2, 600).len();
    assert!(
        first.contains(&format!("{before} units in ")),
        "first run:\n{first}"
    );
    assert!(
        first.contains("Mersenne primes found (13):") && first.contains("M521"),
        "first run:\n{first}"
    );
    // The second run's range includes the first: the old units come from
    // the table on disk, and only the new ones count towards throughput.
    let second = run_local(&data, "2-1000");
    let new = primes_in(601, 1000).len();
    assert!(
        second.contains(&format!(
            "{before} units were already done before this run; the figures below count the other {new}"
        )),
        "second run:\n{second}"
    );
    assert!(
        second.contains(&format!("{new} units in ")),
        "second run:\n{second}"
    );
    assert!(
        second.contains("Mersenne primes found (14):") && second.contains("M607"),
        "second run:\n{second}"
    );
    let eff: f64 = second
        .lines()
        .find_map(|l| l.split("efficiency ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no efficiency in:\n{second}"));
    assert!(eff <= 1.05, "efficiency {eff} counts old units:\n{second}");
    let _ = std::fs::remove_dir_all(&dir);
}
