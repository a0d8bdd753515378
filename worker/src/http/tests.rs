//! Rendering tests: a made-up snapshot through the page and `/metrics`.

use mersenne_common::ll::Status;
use mersenne_common::work::UnitResult;
use mersenne_common::work::verify::Verification;

use super::metrics::tests::parse;
use super::samples::Sample;
use super::view::{ResultPage, ResultRow, RingPeer, RingView, Snapshot, UnitProgress};
use super::{HttpConfig, esc, metrics, page};
use crate::net::NodeStatus;

fn status() -> NodeStatus {
    serde_json::from_value(serde_json::json!({
        "addr": "127.0.0.1:7001", "id": "4000000000000000", "member": true,
        "membership": "member", "known_peers": 2,
        "predecessor": ["127.0.0.1:7000", "1000000000000000"],
        "successors": [["127.0.0.1:7002", "c000000000000000"], ["127.0.0.1:7000", "1000000000000000"]],
        "fingers": 64, "finger_nodes": 2, "held": 30, "owned": 12, "submitted": 5,
        "claimed": 2, "done": 5, "crunching": [86243, 44497], "finished": 7, "results": 3,
        "iterations_per_sec": 1234.5, "uptime_secs": 75.0, "messages_in": 900,
        "messages_out": 950, "ring_dropped": 17, "ring_ops": 40, "claims": 9, "claim_ms_total": 4.5, "renewals": 3
    }))
    .expect("a NodeStatus")
}

fn peer(id: u64, port: u16) -> RingPeer {
    RingPeer {
        id,
        addr: format!("127.0.0.1:{port}"),
    }
}

fn result(p: u64, status: Status, res64: u64, by: &str) -> UnitResult {
    UnitResult {
        exponent: p,
        status,
        res64,
        shift: 3,
        engine: "fft".into(),
        computed_by: by.into(),
        finished_ms: 1_764_480_000_000,
        crunch_ms: 1500,
        fft_length: 0,
        errors: 0,
        signature: None,
        certificate: None,
    }
}

fn snapshot() -> Snapshot {
    let rows = vec![
        ResultRow {
            best: result(4423, Status::Prime, 0, "127.0.0.1:7000"),
            agree: 1,
            total: 1,
            verification: Verification::Unverified,
        },
        ResultRow {
            best: result(
                4327,
                Status::Composite,
                0xC06B_3CA8_88EC_FB62,
                "127.0.0.1:7002",
            ),
            agree: 2,
            total: 2,
            verification: Verification::Verified,
        },
        ResultRow {
            best: result(4441, Status::Composite, 0x1234, "<b>evil</b>"),
            agree: 2,
            total: 3,
            verification: Verification::Mismatch,
        },
    ];
    Snapshot {
        status: status(),
        ring: RingView {
            me: Some(peer(0x4000_0000_0000_0000, 7001)),
            predecessor: Some(peer(0x1000_0000_0000_0000, 7000)),
            successors: vec![
                peer(0xc000_0000_0000_0000, 7002),
                peer(0x1000_0000_0000_0000, 7000),
            ],
            others: vec![peer(0xc000_0000_0000_0000, 7002)],
        },
        units: vec![
            UnitProgress {
                exponent: 86243,
                iteration: Some(43120),
                ms_per_iter: Some(0.031),
                eta_secs: Some(1.34),
            },
            UnitProgress {
                exponent: 44497,
                iteration: None,
                ms_per_iter: None,
                eta_secs: None,
            },
        ],
        results: ResultPage {
            page: 0,
            total_rows: 3,
            rows,
            primes: vec![4423],
            unverified_primes: vec![9689],
        },
        iterations_total: 92_000,
        samples: (0..30)
            .map(|i| Sample {
                secs: i as f64,
                iterations: i * 1000,
                results: i as usize / 10,
            })
            .collect(),
    }
}

#[test]
fn page_shows_ring_units_results_and_charts() {
    let html = page::render(&snapshot());
    assert!(html.contains(r#"<code id="peer-id">4000000000000000</code>"#));
    assert_eq!(html.matches("data-peer=").count(), 3, "one dot per peer");
    assert!(html.contains(r#"class="peer me" data-peer="4000000000000000""#));
    // Units: one with progress, one without.
    assert!(html.contains(r#"<tr data-unit="86243"><td>M86243</td><td>43120 / 86241</td>"#));
    assert!(html.contains("50.0%"));
    assert!(html.contains(r#"<tr data-unit="44497"><td>M44497</td><td>—</td>"#));
    // Results with their verification state; peer-supplied text escaped.
    assert!(html.contains(r#"<tr data-exponent="4423" class="prime"><td>M4423</td><td>P</td>"#));
    assert!(html.contains("<code>C06B3CA888ECFB62</code>"));
    assert!(html.contains(r#"class="l verified">verified (2/2)"#));
    assert!(html.contains(r#"class="l unverified">unverified (1/1)"#));
    assert!(html.contains(r#"class="l mismatch">mismatch (2/3)"#));
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;") && !html.contains("<b>evil"));
    assert!(html.contains("Verified Mersenne primes: M4423</p>"));
    assert!(html.contains("Reported prime, awaiting double checks: M9689</p>"));
    // The chart has its line: the samples say 1000 iterations/s.
    assert!(html.contains(r#"id="chart-iterations""#));
    assert!(html.contains(r#"<polyline class="series""#));
    assert!(html.contains("1k LL iterations/s"));
    // Nothing fetched from elsewhere, no scripts.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http"));
    assert!(!html.contains("href=\"http"));
}

#[test]
fn metrics_have_the_main_series() {
    let s = snapshot();
    let m = parse(&metrics::render(&s));
    assert_eq!(m["mersenne_units_crunching"], 2.0);
    assert_eq!(m["mersenne_units_finished_total"], 7.0);
    assert_eq!(m["mersenne_results"], 3.0);
    assert_eq!(m["mersenne_primes_verified"], 1.0);
    assert_eq!(m["mersenne_primes_unverified"], 1.0);
    assert_eq!(m["mersenne_ring_peers_known"], 3.0);
    assert_eq!(m["mersenne_iterations_total"], 92_000.0);
    // The last minute of samples (29 s of them) at 1000 iterations/s.
    assert_eq!(m["mersenne_iterations_per_second"], 1000.0);
    assert_eq!(m["mersenne_messages_in_total"], 900.0);
    assert_eq!(m["mersenne_messages_out_total"], 950.0);
    assert_eq!(m["mersenne_ring_messages_dropped_total"], 17.0);
    assert_eq!(m["mersenne_records_owned{state=\"claimed\"}"], 2.0);
    assert!((m["mersenne_claim_seconds_total"] - 0.0045).abs() < 1e-12);
    assert_eq!(
        m["mersenne_peer_info{id=\"4000000000000000\",addr=\"127.0.0.1:7001\"}"],
        1.0
    );
}

#[test]
fn page_and_metrics_say_why_units_are_held_back() {
    let mut s = snapshot();
    assert!(!page::render(&s).contains(r#"id="held""#));
    s.status.paused = vec!["machine busy".into()];
    s.status.memory = Some(crate::citizen::memory::MemoryStatus {
        cap: 64 << 20,
        in_use: 40 << 20,
        waiting: vec![(216091, 30 << 20)],
        refused: vec![(1257787, 100 << 20)],
    });
    let html = page::render(&s);
    assert!(
        html.contains(
            "<p id=\"held\">paused: machine busy · memory 40 MiB of --max-memory 64 MiB · \
             M216091 waiting for memory (needs 30 MiB) · \
             M1257787 refused (needs 100 MiB, more than --max-memory)</p>"
        ),
        "{html}"
    );
    let m = parse(&metrics::render(&s));
    assert_eq!(m["mersenne_memory_limit_bytes"], (64u64 << 20) as f64);
    assert_eq!(m["mersenne_memory_in_use_bytes"], (40u64 << 20) as f64);
    assert_eq!(m["mersenne_units_waiting_for_memory"], 1.0);
}

#[test]
fn result_pager_links_pages() {
    let mut s = snapshot();
    s.results.total_rows = 10_000;
    s.results.page = 3;
    let html = page::render(&s);
    assert!(html.contains("page 4 of 100 (10000 exponents)"));
    assert!(html.contains(r#"<a href="?page=2">previous</a>"#));
    assert!(html.contains(r#"<a href="?page=4">next</a>"#));
    assert!(html.contains(r#"<a href="?page=99">last</a>"#));
}

#[test]
fn only_loopback_without_http_public() {
    let cfg = |a: &str, public| HttpConfig {
        addr: a.parse().unwrap(),
        public,
    };
    assert!(cfg("127.0.0.1:0", false).check().is_ok());
    assert!(cfg("[::1]:8080", false).check().is_ok());
    let refused = cfg("0.0.0.0:8080", false).check().unwrap_err();
    assert!(refused.to_string().contains("--http-public"), "{refused}");
    assert!(cfg("192.0.2.7:8080", false).check().is_err());
    assert!(cfg("0.0.0.0:8080", true).check().is_ok());
}

#[test]
fn escaping() {
    assert_eq!(
        esc(r#"<a href="x">&'"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}
