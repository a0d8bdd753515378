//! Shared harness of the grid tests: real `worker` and `coordinator`
//! processes, each in a guard that kills it on drop (also when a test
//! panics), every wait and every read bounded in time, and the oracles the
//! tables are checked against.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use mersenne_common::ll::Status;
use mersenne_common::primes::primes_in;
use mersenne_common::work::UnitResult;
use mersenne_worker::net::{self, NodeStatus, Request, Response, UnitRow};
use num_bigint::BigUint;

pub mod mallory;
pub mod netns;
pub mod sockets;

/// Published Mersenne prime exponents (the oracle for statuses).
pub const KNOWN: &[u64] = &[
    2, 3, 5, 7, 13, 17, 19, 31, 61, 89, 107, 127, 521, 607, 1279, 2203, 2281, 3217, 4253, 4423,
    9689, 9941, 11213, 19937, 21701, 23209, 44497, 86243, 110503, 132049, 216091,
];

/// `worker results --primes` text output lists exactly the published
/// Mersenne prime exponents up to `max`: the count line and each of them.
pub fn assert_lists_known_primes(out: &str, max: u64) {
    let primes: Vec<u64> = KNOWN.iter().copied().filter(|p| *p <= max).collect();
    assert!(
        out.contains(&format!("{} exponents", primes.len())),
        "{out}"
    );
    for p in &primes {
        assert!(
            out.lines().any(|l| l
                .split(|c: char| !c.is_ascii_digit())
                .any(|w| w == p.to_string())),
            "M{p} missing from:\n{out}"
        );
    }
}

/// A fresh directory (tempfile's), removed when the guard drops after a
/// test that passed, and kept (its path printed) after one that panicked,
/// for the peers' logs in it.
pub fn tmpdir(name: &str) -> TmpDir {
    let d = tempfile::Builder::new()
        .prefix(&format!("grid-{name}-"))
        .tempdir()
        .unwrap();
    TmpDir(d)
}

/// The guard of [`tmpdir`]. Declared before the processes that write into
/// it, it drops after their guards have killed them.
pub struct TmpDir(tempfile::TempDir);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        self
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("kept for the failed test: {}", self.0.path().display());
        }
    }
}

/// The `worker` binary under test.
pub fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worker"))
}

/// The `coordinator` binary, built once if this package's test run did not.
pub fn coordinator_exe() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe =
                worker_exe().with_file_name(format!("coordinator{}", std::env::consts::EXE_SUFFIX));
            if !exe.exists() {
                // `cargo test -p mersenne-worker` alone does not build the
                // other package's binary.
                // In the worker's own profile: `cargo test --release`
                // (CI's hostile run) wants a release coordinator beside it.
                let release = worker_exe()
                    .parent()
                    .is_some_and(|d| d.ends_with("release"));
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let ok = Command::new(cargo)
                    .args([
                        "build",
                        "-p",
                        "mersenne-coordinator",
                        "--bin",
                        "coordinator",
                    ])
                    .args(release.then_some("--release"))
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
            exe
        })
        .clone()
}

/// A child process that is killed and reaped when dropped, on every path.
pub struct Guard(pub Child);

impl Guard {
    /// Spawns `cmd` under a guard.
    pub fn spawn(cmd: &mut Command) -> Guard {
        Guard(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}")),
        )
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, `INT`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.0.id());
    }

    /// Waits for the child to exit, at most `limit`; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(c) = self.0.try_wait().unwrap() {
                return c;
            }
            assert!(t.elapsed() < limit, "process did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills and reaps the child.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lines of a child's stdout, read on a thread so that every read is
/// bounded by `recv_timeout`.
pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A child under a guard whose stdout and stderr are read to the end on
/// threads, so that it never blocks on a full pipe and every read of its
/// output is bounded.
pub struct Collecting {
    /// The process.
    pub guard: Guard,
    out: mpsc::Receiver<Vec<u8>>,
    err: mpsc::Receiver<Vec<u8>>,
}

impl Collecting {
    /// Spawns `cmd` with stdin closed and stdout and stderr collected.
    pub fn spawn(cmd: &mut Command) -> Collecting {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = Guard::spawn(cmd);
        let pipe = |r: Box<dyn Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut r = r;
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                let _ = tx.send(v);
            });
            rx
        };
        let out = pipe(Box::new(guard.0.stdout.take().expect("stdout piped")));
        let err = pipe(Box::new(guard.0.stderr.take().expect("stderr piped")));
        Collecting { guard, out, err }
    }

    /// Waits for the child to exit, at most `limit` (it is killed on the
    /// way out otherwise), then for the rest of its output, at most 10 s.
    pub fn finish(mut self, limit: Duration) -> Output {
        let status = self.guard.wait_exit(limit);
        let rest = |rx: &mpsc::Receiver<Vec<u8>>, what: &str| {
            rx.recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{what} still open 10 s after the process exited"))
        };
        Output {
            status,
            stdout: rest(&self.out, "stdout"),
            stderr: rest(&self.err, "stderr"),
        }
    }
}

/// Runs a command to completion within `limit` (killed otherwise) and
/// returns its output.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    Collecting::spawn(cmd).finish(limit)
}

/// A `worker` or `coordinator` peer process under a guard.
pub struct Peer {
    /// The process.
    pub guard: Guard,
    /// The address it reported (`listening on ADDR`).
    pub addr: String,
    /// Its stderr log.
    pub log: PathBuf,
    /// Its peer id (from the key under its `--data`): the `computed_by`
    /// of every result it signs.
    pub peer_id: String,
}

impl Peer {
    /// Starts `exe args --data data` and waits (bounded) for its address.
    pub fn start(exe: &Path, args: &[&str], data: &Path, log: &Path) -> Peer {
        Peer::start_cmd(Command::new(exe), args, data, log)
    }

    /// Like [`Peer::start`] with a prepared command (e.g. `ip netns exec`).
    pub fn start_cmd(mut cmd: Command, args: &[&str], data: &Path, log: &Path) -> Peer {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        cmd.args(args)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(logf);
        let mut guard = Guard::spawn(&mut cmd);
        let rx = lines_of(&mut guard.0);
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("peer did not report its address in 30 s: {cmd:?}"));
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        // The key exists once the peer listens (it is made before).
        let peer_id = mersenne_worker::identity::Identity::load_or_create(data)
            .map(|i| i.peer_id())
            .unwrap_or_else(|e| panic!("the peer's key under {}: {e}", data.display()));
        Peer {
            guard,
            addr,
            log: log.to_path_buf(),
            peer_id,
        }
    }

    /// The grid tests' worker flags: one thread, short leases, fast gossip.
    /// A flag in `extra` replaces the default of the same name.
    pub fn worker_args<'a>(join: Option<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
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
        for pair in extra.chunks(2) {
            match args.iter().position(|a| *a == pair[0]) {
                Some(i) => args[i + 1] = pair[1],
                None => args.extend(pair),
            }
        }
        args
    }

    /// A worker on loopback with data in `dir/name` and log `dir/name.log`.
    pub fn worker(dir: &Path, name: &str, join: Option<&str>, extra: &[&str]) -> Peer {
        Peer::start(
            &worker_exe(),
            &Peer::worker_args(join, extra),
            &dir.join(name),
            &dir.join(format!("{name}.log")),
        )
    }

    /// Kills (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.guard.kill();
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }
}

/// A runtime for one blocking call from a test thread.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One request, bounded at 10 s; `None` on any failure.
pub fn ask(addr: &str, req: Request) -> Option<Response> {
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(10), net::one_request(addr, req))
            .await
            .ok()?
            .ok()
    })
}

/// The peer's whole result table, sorted.
pub fn table(addr: &str) -> Option<Vec<UnitResult>> {
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

/// The peer's status.
pub fn status(addr: &str) -> Option<NodeStatus> {
    match ask(addr, Request::Status)? {
        Response::Status(s) => Some(*s),
        _ => None,
    }
}

/// The unit records the peer holds.
pub fn units(addr: &str) -> Option<Vec<UnitRow>> {
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

/// A node's ring id from its status.
pub fn id_of(s: &NodeStatus) -> u64 {
    u64::from_str_radix(&s.id, 16).unwrap()
}

/// The live ring as its members see it: every node's predecessor and first
/// successor are its neighbours in id order, and its successor list holds
/// all the others (r = 8 is more than these rings have).
pub fn ring_formed(addrs: &[&str]) -> bool {
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

/// Submits `from..=to` through `addr`: (created, existed).
pub fn submit(addr: &str, from: u64, to: u64) -> (u64, u64) {
    match ask(
        addr,
        Request::Submit {
            from,
            to,
            grant: None,
        },
    ) {
        Some(Response::Created { created, existed }) => (created, existed),
        other => panic!("submit failed: {other:?}"),
    }
}

/// Polls `ok` every 200 ms until it holds; panics after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
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
pub fn exponents(t: &[UnitResult]) -> Vec<u64> {
    let mut v: Vec<u64> = t.iter().map(|r| r.exponent).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// res64 of M_p by plain `%` arithmetic: an independent code path from the
/// engines' fold reduction and shifts. Cached, since every table is checked
/// row by row and several tests share exponents.
pub fn res64_oracle(p: u64) -> u64 {
    static CACHE: OnceLock<Mutex<HashMap<u64, u64>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().unwrap().get(&p) {
        return *r;
    }
    let m = (BigUint::from(1u8) << p) - 1u8;
    let mut s = BigUint::from(4u8);
    for _ in 0..p.saturating_sub(2) {
        s = (&s * &s + &m - 2u8) % &m;
    }
    let r = if p == 2 {
        0
    } else {
        s.iter_u64_digits().next().unwrap_or(0)
    };
    cache.lock().unwrap().insert(p, r);
    r
}

/// Largest exponent whose residue the oracle recomputes in a test; above it
/// only the published list is the oracle (a prime's residue is 0).
const ORACLE_MAX: u64 = 5_000;

/// Every unit in `from..=to` has a result and every result is right: the
/// status against the published list, and the res64 of every row against
/// the oracle (0 for a published prime).
pub fn check_table(t: &[UnitResult], from: u64, to: u64) {
    check_rows(t, &primes_in(from, to));
}

/// As [`check_table`] for an explicit list of exponents.
pub fn check_rows(t: &[UnitResult], want: &[u64]) {
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(exponents(t), want, "missing or extra units");
    let mut by_p: BTreeMap<u64, Vec<&UnitResult>> = BTreeMap::new();
    for r in t {
        by_p.entry(r.exponent).or_default().push(r);
    }
    for (p, rs) in &by_p {
        let prime = KNOWN.contains(p);
        let res64 = if prime {
            0
        } else {
            assert!(*p <= ORACLE_MAX, "M{p}: no oracle for a composite this big");
            res64_oracle(*p)
        };
        if prime && *p <= ORACLE_MAX {
            assert_eq!(res64_oracle(*p), 0, "the oracle disagrees on M{p}");
        }
        for r in rs {
            let want = if prime {
                Status::Prime
            } else {
                Status::Composite
            };
            assert_eq!(
                r.status, want,
                "wrong status for M{p} from {}",
                r.computed_by
            );
            assert_eq!(
                r.res64, res64,
                "wrong res64 for M{p} from {}",
                r.computed_by
            );
        }
    }
}

/// Runs `coordinator args` to completion; its stdout.
pub fn coordinator(args: &[&str]) -> String {
    let out = run_bounded(
        Command::new(coordinator_exe()).args(args),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "coordinator {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Makes the key of a volunteer with data in `data`; its peer id.
pub fn volunteer_key(data: &Path) -> String {
    std::fs::create_dir_all(data).unwrap();
    mersenne_worker::identity::Identity::load_or_create(data)
        .unwrap()
        .peer_id()
}

/// Admits the volunteer with data in `data` to the project in `project`:
/// its certificate goes where the worker looks for it.
pub fn admit(project: &Path, data: &Path) {
    let id = volunteer_key(data);
    let cert = data.join("membership.cert");
    coordinator(&[
        "admit",
        &id,
        "--dir",
        project.to_str().unwrap(),
        "--out",
        cert.to_str().unwrap(),
    ]);
}

/// Every row of `t` was signed by the key its `computed_by` names and
/// carries a membership certificate of project `project_id`, issued to
/// that key and valid when the row was finished.
pub fn assert_rows_certified(t: &[UnitResult], project_id: &str) {
    let project_key = mersenne_common::work::signature::public_key_of(project_id).unwrap();
    for r in t {
        let cert = r
            .certificate
            .as_deref()
            .expect("a member's result carries its certificate");
        let signer = r.signature.as_ref().expect("signed").public_key;
        assert_eq!(
            mersenne_worker::identity::peer_id_of(&signer),
            r.computed_by,
            "{r:?}"
        );
        assert_eq!(
            mersenne_common::membership::check(cert, &project_key, &signer, r.finished_ms, None),
            Ok(()),
            "{r:?}"
        );
    }
}
