//! The coordinator binary starts, prints its bound address, and refuses bad
//! input. (The grid tests in `worker/tests` run it alongside workers.)

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn help_has_an_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("--seed-range"), "{text}");
    assert!(text.contains("Example"), "{text}");
}

#[test]
fn bad_range_is_refused() {
    // Refused while parsing arguments; were it to start instead, the guard
    // and the bounded wait stop it.
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .args(["--seed-range", "9-3", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains("empty"), "{err}");
}

/// Kills and reaps the child on drop, also when an assertion fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn starts_and_reports_its_address() {
    let dir = std::env::temp_dir().join(format!("coord-cli-{}", std::process::id()));
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Read on a thread, so that a coordinator that never prints cannot
    // hang the test.
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    let line = line.expect("no address printed within 30 s");
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
}

/// `GET path` over HTTP/1.0, bounded at 10 s: (status code, body).
fn get(http: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(http).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {http}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .expect("a whole UTF-8 response within 10 s");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers end");
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    (code.expect("status line"), body.to_string())
}

/// The value of one sample in a Prometheus text exposition.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn serves_the_dashboard_and_metrics_of_what_it_seeded() {
    let dir = std::env::temp_dir().join(format!("coord-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(["--seed-range", "2-100", "--data"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("an address within 30 s");
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    let second = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the dashboard line");
    let http = second
        .strip_prefix("dashboard on http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_string();
    // The seeded range: 25 primes up to 100, each a unit record this ring
    // of one holds, none crunched (the coordinator does not crunch).
    let t = Instant::now();
    let metrics = loop {
        let (code, body) = get(&http, "/metrics");
        assert_eq!(code, 200, "{body}");
        if sample(&body, "mersenne_records_held") == Some(25.0) {
            break body;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the seeded records never showed: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sample(&metrics, "mersenne_ring_member"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mersenne_units_crunching"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "mersenne_results"), Some(0.0), "{metrics}");
    let (code, page) = get(&http, "/");
    assert_eq!(code, 200);
    assert!(page.contains("<svg"), "no ring drawn: {page}");
    assert!(
        page.contains(&first["listening on ".len()..]),
        "the page does not name the peer"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
