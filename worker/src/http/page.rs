//! The dashboard page: server-rendered HTML with inline CSS and SVG, no
//! scripts and nothing fetched from elsewhere, so it works offline and
//! behind any proxy. It reloads itself every [`REFRESH_SECS`].

use std::fmt::Write;

use mersenne_common::ll::res64_hex;

use super::esc;
use super::samples;
use super::svg;
use super::view::{ResultPage, Snapshot, UnitProgress};

/// Seconds between reloads (a `<meta http-equiv="refresh">`).
pub const REFRESH_SECS: u32 = 10;

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222;background:#fff}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:.8em 0 .3em}\
code{font-size:.95em}\
.grid{display:flex;flex-wrap:wrap;gap:1em 3em}\
table{border-collapse:collapse;font-size:.9em}\
th,td{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}\
th{background:#f4f4f4}td.l,th.l{text-align:left}\
tr.prime td{font-weight:bold;background:#fff6d6}\
.verified{color:#17803d}.unverified{color:#8a6d00}.mismatch{color:#b3261e}\
.bar{display:inline-block;width:120px;height:10px;background:#eee;vertical-align:middle}\
.bar span{display:block;height:100%;background:#2a6fdb}\
.muted{color:#777}nav a{margin-right:.8em}#ring-view{max-width:560px}";

/// Seconds as `1h02m`, `3m07s` or `42s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn header(out: &mut String, s: &Snapshot) {
    let st = &s.status;
    let _ = write!(
        out,
        r#"<header><h1>Mersenne Ring peer <code id="peer-addr">{}</code></h1>
<p>ring id <code id="peer-id">{}</code> · {} · up {} · {} results · {} units finished here · {} LL iterations/s</p></header>
"#,
        esc(&st.addr),
        esc(&st.id),
        esc(&st.membership),
        duration(st.uptime_secs),
        s.results.total_rows,
        st.finished,
        svg::human(samples::recent_rate(&s.samples, 60.0).unwrap_or(st.iterations_per_sec)),
    );
    let list = |v: &[u64]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|p| format!("M{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        out,
        r#"<p id="primes">Verified Mersenne primes: {}</p>
<p id="primes-unverified">Reported prime, awaiting double checks: {}</p>"#,
        list(&s.results.primes),
        list(&s.results.unverified_primes),
    );
}

fn ring(out: &mut String, s: &Snapshot) {
    let peers = s.ring.peers();
    let me = s.ring.me.as_ref().map(|p| p.id);
    let _ = writeln!(
        out,
        "<section id=\"ring-view\"><h2>The ring as this peer sees it</h2>{}",
        svg::ring(&peers, me)
    );
    let name = |p: &super::view::RingPeer| format!("{} ({:016x})", esc(&p.addr), p.id);
    let pred = s.ring.predecessor.as_ref().map_or("none".into(), name);
    let succ: Vec<String> = s.ring.successors.iter().map(name).collect();
    let _ = writeln!(
        out,
        r#"<p class="muted">Each arc is the part of the 64-bit id space its peer owns; arrows point to each peer's successor.<br>predecessor {pred}<br>successors {}</p></section>"#,
        if succ.is_empty() {
            "none".into()
        } else {
            succ.join(", ")
        }
    );
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "—".to_string(), f)
}

fn units(out: &mut String, units: &[UnitProgress]) {
    out.push_str("<section id=\"progress\"><h2>Units in progress</h2>");
    if units.is_empty() {
        out.push_str("<p class=\"muted\">none</p></section>\n");
        return;
    }
    out.push_str(
        "<table><tr><th>exponent</th><th>iteration</th><th class=\"l\">done</th><th>ms/iter</th><th>ETA</th></tr>\n",
    );
    for u in units {
        let done = opt(u.fraction(), |f| {
            format!(
                r#"<span class="bar"><span style="width:{:.1}%"></span></span> {:.1}%"#,
                f * 100.0,
                f * 100.0
            )
        });
        let _ = writeln!(
            out,
            r#"<tr data-unit="{p}"><td>M{p}</td><td>{}</td><td class="l">{done}</td><td>{}</td><td>{}</td></tr>"#,
            opt(u.iteration, |i| format!("{i} / {}", u.total())),
            opt(u.ms_per_iter, |m| format!("{m:.3}")),
            opt(u.eta_secs, duration),
            p = u.exponent,
        );
    }
    out.push_str("</table></section>\n");
}

/// Why units are held back, when they are: the pause's reasons and the
/// `--max-memory` budget with the units waiting for it or refused by it.
fn held(out: &mut String, st: &crate::net::NodeStatus) {
    use crate::citizen::memory::human;
    let mut parts = Vec::new();
    if !st.paused.is_empty() {
        parts.push(format!("paused: {}", esc(&st.paused.join(", "))));
    }
    if let Some(m) = &st.memory {
        parts.push(format!(
            "memory {} of --max-memory {}",
            human(m.in_use),
            human(m.cap)
        ));
        for (p, need) in &m.waiting {
            parts.push(format!("M{p} waiting for memory (needs {})", human(*need)));
        }
        for (p, need) in &m.refused {
            parts.push(format!(
                "M{p} refused (needs {}, more than --max-memory)",
                human(*need)
            ));
        }
    }
    if !parts.is_empty() {
        let _ = writeln!(out, r#"<p id="held">{}</p>"#, parts.join(" · "));
    }
}

fn throughput(out: &mut String, s: &Snapshot) {
    let r = samples::rates(&s.samples);
    let iters: Vec<(f64, f64)> = r.iter().map(|&(t, i, _)| (t, i)).collect();
    let results: Vec<(f64, f64)> = r.iter().map(|&(t, _, u)| (t, u * 60.0)).collect();
    let _ = writeln!(
        out,
        "<section id=\"throughput\"><h2>Throughput</h2>{}<br>{}</section>",
        svg::line_chart("chart-iterations", "LL iterations/s here", &iters),
        svg::line_chart("chart-results", "new results/min in the table", &results)
    );
}

fn pager(out: &mut String, r: &ResultPage) {
    let last = r.pages() - 1;
    let link = |label: &str, p: usize, on: bool| {
        if on {
            format!(r#"<a href="?page={p}">{label}</a>"#)
        } else {
            format!(r#"<span class="muted">{label}</span> "#)
        }
    };
    let _ = writeln!(
        out,
        "<nav>{}{}{}{} page {} of {} ({} exponents)</nav>",
        link("first", 0, r.page > 0),
        link("previous", r.page.saturating_sub(1), r.page > 0),
        link("next", (r.page + 1).min(last), r.page < last),
        link("last", last, r.page < last),
        r.page + 1,
        r.pages(),
        r.total_rows
    );
}

fn results(out: &mut String, r: &ResultPage) {
    out.push_str("<section id=\"results\"><h2>Results</h2>\n");
    pager(out, r);
    out.push_str(
        "<table id=\"results-table\"><tr><th>exponent</th><th>status</th><th class=\"l\">res64</th><th class=\"l\">verification</th><th class=\"l\">computed by</th><th class=\"l\">engine</th><th>crunch</th><th class=\"l\">finished (UTC)</th></tr>\n",
    );
    for row in &r.rows {
        let b = &row.best;
        let v = row.verification;
        let prime = b.status == mersenne_common::ll::Status::Prime;
        let _ = writeln!(
            out,
            r#"<tr data-exponent="{}"{}><td>M{}</td><td>{}</td><td class="l"><code>{}</code></td><td class="l {}">{} ({}/{})</td><td class="l">{}</td><td class="l">{}</td><td>{}</td><td class="l">{}</td></tr>"#,
            b.exponent,
            if prime { r#" class="prime""# } else { "" },
            b.exponent,
            b.status.code(),
            res64_hex(b.res64),
            v.name(),
            v.name(),
            row.agree,
            row.total,
            esc(&b.computed_by),
            esc(&b.engine),
            duration(b.crunch_ms as f64 / 1000.0),
            crate::timefmt::utc_from_unix_ms(b.finished_ms),
        );
    }
    out.push_str("</table>\n");
    if r.rows.len() > 20 {
        pager(out, r);
    }
    out.push_str("</section>\n");
}

/// The whole page.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_SECS}">
<title>Mersenne Ring · {}</title><style>{STYLE}</style></head><body>
"#,
        esc(&s.status.addr)
    );
    header(&mut out, s);
    out.push_str("<div class=\"grid\">\n");
    ring(&mut out, s);
    out.push_str("<div>\n");
    units(&mut out, &s.units);
    held(&mut out, &s.status);
    throughput(&mut out, s);
    out.push_str("</div></div>\n");
    results(&mut out, &s.results);
    out.push_str(
        "<footer class=\"muted\"><a href=\"/metrics\">/metrics</a> (Prometheus)</footer>\n</body></html>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(59.0), "59s");
        assert_eq!(duration(187.0), "3m07s");
        assert_eq!(duration(3720.0), "1h02m");
    }
}
