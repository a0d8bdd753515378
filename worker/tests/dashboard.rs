//! The dashboard of a live peer (`worker --http`): its page and `/metrics`
//! over real HTTP, and the page as headless Chromium renders it.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use mersenne_common::ll::{Status, res64_hex};
use mersenne_common::primes::primes_in;
use mersenne_common::work::UnitResult;

/// A peer serving the dashboard, and the dashboard's address.
struct DashPeer {
    // Killed on drop.
    _peer: Guard,
    addr: String,
    peer_id: String,
    http: String,
    // Kept so that the peer's stdout stays open.
    _stdout: mpsc::Receiver<String>,
}

/// Starts a worker with `--http 127.0.0.1:0` and reads both addresses it
/// prints (`listening on ADDR`, then `dashboard on http://ADDR/`).
fn dash_peer(dir: &Path, name: &str, join: Option<&str>) -> DashPeer {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut cmd = Command::new(worker_exe());
    cmd.args(Peer::worker_args(join, &["--http", "127.0.0.1:0"]))
        .arg("--data")
        .arg(dir.join(name))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut peer = Guard::spawn(&mut cmd);
    let rx = lines_of(&mut peer.0);
    let next = || {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("peer printed its addresses within 30 s")
    };
    let first = next();
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let second = next();
    let http = second
        .strip_prefix("dashboard on http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_string();
    let peer_id = mersenne_worker::identity::Identity::load_or_create(&dir.join(name))
        .unwrap()
        .peer_id();
    DashPeer {
        _peer: peer,
        addr,
        peer_id,
        http,
        _stdout: rx,
    }
}

/// `GET path` over HTTP/1.0, bounded at 10 s: (status code, headers, body).
fn get(http: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(http).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {http}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("a whole response within 10 s");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    (code, head.to_ascii_lowercase(), body.to_string())
}

/// The samples of a Prometheus text exposition, `series{labels}` → value;
/// every sample must follow the `# TYPE` line of its family.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut typed = Vec::new();
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let family = series.split('{').next().unwrap();
            assert!(typed.iter().any(|t| t == family), "no # TYPE for {line}");
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            out.insert(series.to_string(), v);
        }
    }
    out
}

/// A two-peer ring, the first serving the dashboard and crunching, the
/// second not crunching, with `2..=to` crunched and in the first's table;
/// their directory comes first, so that it outlives them.
fn grid(name: &str, to: u64) -> (TmpDir, DashPeer, Peer, Vec<UnitResult>) {
    let dir = tmpdir(name);
    let a = dash_peer(&dir, "a", None);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &["--threads", "0"]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    let units = primes_in(2, to).len();
    assert_eq!(submit(&a.addr, 2, to), (units as u64, 0));
    wait_for("the table complete", Duration::from_secs(60), || {
        table(&a.addr).is_some_and(|t| exponents(&t).len() == units)
    });
    let t = table(&a.addr).unwrap();
    check_table(&t, 2, to);
    (dir, a, b, t)
}

/// The row the page shows for exponent `p`, up to its verification cell.
fn row_of(t: &[UnitResult], p: u64) -> String {
    let r = t.iter().find(|r| r.exponent == p).unwrap();
    let class = if r.status == Status::Prime {
        r#" class="prime""#
    } else {
        ""
    };
    format!(
        r#"<tr data-exponent="{p}"{class}><td>M{p}</td><td>{}</td><td class="l"><code>{}</code></td>"#,
        r.status.code(),
        res64_hex(r.res64)
    )
}

#[test]
fn page_and_metrics_of_a_live_peer() {
    let (_dir, a, b, t) = grid("dash-http", 400);
    // A unit long enough (seconds) to be seen in progress.
    const LONG: u64 = 216_091;
    assert_eq!(submit(&b.addr, LONG, LONG), (1, 0));
    wait_for("the long unit crunching", Duration::from_secs(30), || {
        status(&a.addr).is_some_and(|s| s.crunching == [LONG])
    });
    let st = status(&a.addr).unwrap();

    let (code, head, page) = get(&a.http, "/");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(page.contains(&format!(r#"<code id="peer-id">{}</code>"#, st.id)));
    assert_eq!(page.matches("data-peer=").count(), 2, "one dot per peer");
    for p in [127, 397] {
        assert!(page.contains(&row_of(&t, p)), "row of M{p} missing");
    }
    // Only a crunches: its primes are reports that nobody has checked.
    assert!(page.contains("Verified Mersenne primes: none</p>"));
    assert!(page.contains(
        "Reported prime, awaiting double checks: M2, M3, M5, M7, M13, M17, M19, M31, M61, M89, \
         M107, M127</p>"
    ));
    assert!(page.contains(&format!(r#"<tr data-unit="{LONG}"><td>M{LONG}</td>"#)));

    let (code, head, text) = get(&a.http, "/metrics");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let m = parse_metrics(&text);
    assert!(
        t.iter().all(|r| r.computed_by == a.peer_id),
        "only a crunches"
    );
    assert_eq!(m["mersenne_results"], exponents(&t).len() as f64);
    assert_eq!(m["mersenne_primes_verified"], 0.0);
    assert_eq!(m["mersenne_primes_unverified"], 12.0);
    assert_eq!(m["mersenne_ring_peers_known"], 2.0);
    assert_eq!(m["mersenne_ring_member"], 1.0);
    assert_eq!(m["mersenne_units_crunching"], 1.0);
    // At least: a unit whose lease lapsed under load may be crunched twice.
    assert!(m["mersenne_units_finished_total"] >= t.len() as f64);
    let iterations: u64 = t.iter().map(|r| r.exponent - 2).sum();
    assert!(
        m["mersenne_iterations_total"] >= iterations as f64,
        "{} iterations counted, the results crunched here need {iterations}",
        m["mersenne_iterations_total"]
    );
    assert!(m["mersenne_iterations_per_second"] >= 0.0);
    assert!(m["mersenne_messages_in_total"] > 0.0);
    assert!(m["mersenne_messages_out_total"] > 0.0);
    assert!(m.contains_key(&format!(
        "mersenne_peer_info{{id=\"{}\",addr=\"{}\"}}",
        st.id, a.addr
    )));
    drop((a, b));
}

#[test]
fn a_public_address_needs_http_public() {
    let dir = tmpdir("dash-public");
    let out = run_bounded(
        Command::new(worker_exe())
            .args(["--listen", "127.0.0.1:0", "--http", "0.0.0.0:0", "--data"])
            .arg(dir.join("a")),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--http-public"), "{err}");
}

/// Width and height from a PNG's IHDR chunk, or `None` if it is no PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let sig = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != sig || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

#[test]
fn chromium_renders_the_dashboard() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect(
            "chromium is needed for this test and is not installed: \
             `apt-get install chromium` (.ci/run installs it under CI=true)",
        );
    let (_dir, a, b, t) = grid("dash-browser", 200);
    let st = status(&a.addr).unwrap();
    let dir = tmpdir("dash-chromium");
    let shot = dir.join("dashboard.png");
    let (w, h) = (1280, 1400);
    let out = run_bounded(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                &format!("--user-data-dir={}", dir.join("profile").display()),
                &format!("--window-size={w},{h}"),
                &format!("--screenshot={}", shot.display()),
                "--dump-dom",
                &format!("http://{}/", a.http),
            ])
            .env("HOME", &*dir),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    // The DOM as Chromium built it: the ring has one dot per peer, this
    // peer's ringed; the table and chart are there.
    let svg = dom
        .split(r#"<svg id="ring""#)
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .expect("the ring's SVG in the DOM");
    assert_eq!(svg.matches("<circle class=\"peer").count(), 2, "{svg}");
    assert!(svg.contains(&format!(r#"<circle class="peer me" data-peer="{}""#, st.id)));
    assert!(dom.contains(&row_of(&t, 89)), "row of M89 missing");
    assert!(dom.contains(r#"id="chart-iterations""#));
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), Some((w, h)), "a {w}x{h} PNG");
    println!("screenshot: {}", shot.display());
    drop((a, b));
}
