//! `/metrics`: the peer's counters in Prometheus's text exposition format
//! (version 0.0.4), written by hand: a dozen series do not need a crate,
//! and the tests parse what is written.

use std::fmt::Write;

use super::samples;
use super::view::Snapshot;

/// The `Content-Type` Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Window of the iterations/s gauge, in seconds.
const RATE_WINDOW: f64 = 60.0;

#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A value as the format writes it (`NaN`, `+Inf`, `-Inf` spelled out).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn label_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The exposition for one snapshot.
pub fn render(s: &Snapshot) -> String {
    let st = &s.status;
    let mut e = Exposition::default();
    e.family(
        "mersenne_peer_info",
        "gauge",
        "This peer's ring id and advertised address (always 1).",
    );
    e.sample(
        "mersenne_peer_info",
        &[("id", &st.id), ("addr", &st.addr)],
        1.0,
    );
    e.one(
        "mersenne_uptime_seconds",
        "gauge",
        "Seconds since the peer started.",
        st.uptime_secs,
    );
    e.one(
        "mersenne_ring_member",
        "gauge",
        "1 while the peer is a member of a ring, 0 while joining, fenced or gone.",
        f64::from(u8::from(st.member)),
    );
    e.one(
        "mersenne_ring_peers_known",
        "gauge",
        "Distinct peers this peer knows of, itself included: successors, predecessor, fingers and peers seen.",
        s.ring.peers().len() as f64,
    );
    e.one(
        "mersenne_ring_successors",
        "gauge",
        "Length of the successor list.",
        st.successors.len() as f64,
    );
    e.one(
        "mersenne_ring_finger_nodes",
        "gauge",
        "Distinct nodes in the finger table.",
        st.finger_nodes as f64,
    );
    e.one(
        "mersenne_results_refused_total",
        "counter",
        "Results refused: unsigned, forged, or outside the limits.",
        st.refused_results as f64,
    );
    e.one(
        "mersenne_records_refused_total",
        "counter",
        "Unit-record writes from the ring refused as illegal steps.",
        st.refused_records as f64,
    );
    e.one(
        "mersenne_records_held",
        "gauge",
        "Unit records held, owned and replicas.",
        st.held as f64,
    );
    e.family(
        "mersenne_records_owned",
        "gauge",
        "Unit records whose key this peer owns, by state.",
    );
    for (state, n) in [
        ("submitted", st.submitted),
        ("claimed", st.claimed),
        ("done", st.done),
    ] {
        e.sample("mersenne_records_owned", &[("state", state)], n as f64);
    }
    e.one(
        "mersenne_units_crunching",
        "gauge",
        "Units this peer is crunching now.",
        st.crunching.len() as f64,
    );
    e.one(
        "mersenne_units_finished_total",
        "counter",
        "Units this peer finished since start.",
        st.finished as f64,
    );
    e.one(
        "mersenne_results",
        "gauge",
        "Exponents in the result table (the whole grid's results as gossiped here).",
        s.results.total_rows as f64,
    );
    e.one(
        "mersenne_primes_verified",
        "gauge",
        "Exponents in the result table verified prime (three agreeing identities).",
        s.results.primes.len() as f64,
    );
    e.one(
        "mersenne_primes_unverified",
        "gauge",
        "Exponents some peer reported prime that are not verified yet.",
        s.results.unverified_primes.len() as f64,
    );
    e.one(
        "mersenne_iterations_total",
        "counter",
        "Lucas-Lehmer iterations done by this peer since start.",
        s.iterations_total as f64,
    );
    let rate = samples::recent_rate(&s.samples, RATE_WINDOW).unwrap_or(st.iterations_per_sec);
    e.one(
        "mersenne_iterations_per_second",
        "gauge",
        "Lucas-Lehmer iterations per second over the last minute (since start until a minute has passed).",
        rate,
    );
    e.one(
        "mersenne_messages_in_total",
        "counter",
        "Frames received (ring messages and requests).",
        st.messages_in as f64,
    );
    e.one(
        "mersenne_messages_out_total",
        "counter",
        "Frames sent (ring messages and requests).",
        st.messages_out as f64,
    );
    e.one(
        "mersenne_ring_messages_dropped_total",
        "counter",
        "Ring messages dropped because the queue to their peer was full.",
        st.ring_dropped as f64,
    );
    e.one(
        "mersenne_ring_ops_total",
        "counter",
        "Ring store operations (get, compare-and-set) started.",
        st.ring_ops as f64,
    );
    e.one(
        "mersenne_claims_total",
        "counter",
        "Units claimed.",
        st.claims as f64,
    );
    e.one(
        "mersenne_claim_seconds_total",
        "counter",
        "Seconds spent finding and claiming those units.",
        st.claim_ms_total / 1000.0,
    );
    e.one(
        "mersenne_lease_renewals_total",
        "counter",
        "Lease renewals sent.",
        st.renewals as f64,
    );
    if let Some(m) = &st.memory {
        e.one(
            "mersenne_memory_limit_bytes",
            "gauge",
            "--max-memory: what the units crunched at once may hold.",
            m.cap as f64,
        );
        e.one(
            "mersenne_memory_in_use_bytes",
            "gauge",
            "Estimated bytes held by the units in progress.",
            m.in_use as f64,
        );
        e.one(
            "mersenne_units_waiting_for_memory",
            "gauge",
            "Units claimed that wait for units in progress to free memory.",
            m.waiting.len() as f64,
        );
    }
    e.0
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Parses an exposition into `series{labels}` → value, checking that
    /// every sample follows a `# TYPE` line of its family (the process test
    /// has its own copy; this one keeps the writer honest).
    pub fn parse(text: &str) -> HashMap<String, f64> {
        let mut typed = std::collections::HashSet::new();
        let mut out = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(["counter", "gauge"].contains(&kind), "{line}");
                typed.insert(name.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let name = series.split('{').next().unwrap();
            assert!(typed.contains(name), "no TYPE before {line}");
            if name.ends_with("_total") {
                assert!(text.contains(&format!("# TYPE {name} counter")), "{name}");
            }
            out.insert(series.to_string(), value.parse::<f64>().expect(line));
        }
        out
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(2.5), "2.5");
    }
}
