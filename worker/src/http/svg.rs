//! Inline SVG for the dashboard: the ring and the throughput chart. Plain
//! strings, no scripts, nothing fetched.

use std::f64::consts::TAU;
use std::fmt::Write;

use super::esc;
use super::view::RingPeer;

/// Size of the ring drawing (the viewBox).
const RING_W: f64 = 560.0;
const RING_H: f64 = 440.0;
const CX: f64 = RING_W / 2.0;
const CY: f64 = RING_H / 2.0;
/// Radius of the ring.
const R: f64 = 160.0;
/// Radius of a peer's dot.
const DOT: f64 = 7.0;
/// Above this many peers, only this peer is labelled (the rest have a
/// tooltip), or the labels would overlap.
const MAX_LABELS: usize = 24;

/// Where on the ring `id` sits, as an angle from the top, clockwise.
fn angle(id: u64) -> f64 {
    id as f64 / 2f64.powi(64) * TAU
}

fn point(a: f64, r: f64) -> (f64, f64) {
    (CX + r * a.sin(), CY - r * a.cos())
}

fn colour(i: usize, n: usize) -> String {
    format!("hsl({:.0},65%,50%)", i as f64 * 360.0 / n.max(1) as f64)
}

/// The ring drawn: every peer at its id (`peers` in id order, as
/// [`super::view::RingView::peers`] gives them), the arc each one owns
/// (from the peer before it, exclusive, to itself), and an arrow from each
/// peer to its successor. `me` is this peer's id, drawn ringed.
pub fn ring(peers: &[RingPeer], me: Option<u64>) -> String {
    let n = peers.len();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg id="ring" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {RING_W} {RING_H}" width="{RING_W}" height="{RING_H}" role="img" aria-label="the ring as this peer sees it">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<circle class="ring" cx="{CX}" cy="{CY}" r="{R}" fill="none" stroke="#ddd" stroke-width="12"/>
"##
    );
    // Owned arcs.
    for (i, p) in peers.iter().enumerate() {
        let c = colour(i, n);
        if n == 1 {
            let _ = writeln!(
                s,
                r#"<circle class="arc" cx="{CX}" cy="{CY}" r="{R}" fill="none" stroke="{c}" stroke-width="12" opacity="0.55"/>"#
            );
            continue;
        }
        let prev = &peers[(i + n - 1) % n];
        let (a0, a1) = (angle(prev.id), angle(p.id));
        let sweep = (a1 - a0).rem_euclid(TAU);
        let (x0, y0) = point(a0, R);
        let (x1, y1) = point(a1, R);
        let large = u8::from(sweep > TAU / 2.0);
        let _ = writeln!(
            s,
            r#"<path class="arc" d="M{x0:.1},{y0:.1} A{R},{R} 0 {large} 1 {x1:.1},{y1:.1}" fill="none" stroke="{c}" stroke-width="12" opacity="0.55"><title>owned by {}: {:.1}% of the ring</title></path>"#,
            esc(&p.addr),
            sweep / TAU * 100.0
        );
    }
    // Successor arrows, bowed towards the centre so that two peers'
    // arrows to each other do not overlap.
    if n > 1 {
        for (i, p) in peers.iter().enumerate() {
            let next = &peers[(i + 1) % n];
            let (a0, a1) = (angle(p.id), angle(next.id));
            let mid = a0 + (a1 - a0).rem_euclid(TAU) / 2.0;
            let (x0, y0) = point(a0, R - DOT - 3.0);
            let (x1, y1) = point(a1, R - DOT - 3.0);
            let (qx, qy) = point(mid, R * 0.55);
            let _ = writeln!(
                s,
                r##"<path class="successor" d="M{x0:.1},{y0:.1} Q{qx:.1},{qy:.1} {x1:.1},{y1:.1}" fill="none" stroke="#555" stroke-width="1.2" marker-end="url(#arrow)"/>"##
            );
        }
    }
    // Peers on top.
    for (i, p) in peers.iter().enumerate() {
        let a = angle(p.id);
        let (x, y) = point(a, R);
        let mine = Some(p.id) == me;
        let (class, stroke) = if mine {
            ("peer me", r##" stroke="#000" stroke-width="3""##)
        } else {
            ("peer", r##" stroke="#fff" stroke-width="1.5""##)
        };
        let _ = writeln!(
            s,
            r#"<circle class="{class}" data-peer="{:016x}" cx="{x:.1}" cy="{y:.1}" r="{DOT}" fill="{}"{stroke}><title>{} {:016x}</title></circle>"#,
            p.id,
            colour(i, n),
            esc(&p.addr),
            p.id
        );
        if n <= MAX_LABELS || mine {
            let (lx, ly) = point(a, R + DOT + 12.0);
            let anchor = if a.sin() >= 0.0 { "start" } else { "end" };
            let weight = if mine { "bold" } else { "normal" };
            let _ = writeln!(
                s,
                r#"<text x="{lx:.1}" y="{:.1}" font-size="11" font-weight="{weight}" text-anchor="{anchor}">{}</text>"#,
                ly + 4.0,
                esc(&p.addr)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{CX}" y="{CY}" font-size="14" text-anchor="middle">{n} peer{} known</text>"#,
        if n == 1 { "" } else { "s" }
    );
    s.push_str("</svg>");
    s
}

/// Size of a chart.
const CHART_W: f64 = 560.0;
const CHART_H: f64 = 160.0;
const PAD_L: f64 = 56.0;
const PAD_B: f64 = 22.0;
const PAD_T: f64 = 10.0;
/// Points drawn at most; longer series are averaged down to this.
const MAX_POINTS: usize = 240;

/// Averages `points` into at most [`MAX_POINTS`] buckets of equal count.
fn downsample(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// A number in a few digits with k/M/G.
pub fn human(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.1}{unit}")
    }
}

/// A line chart of `points` (seconds, value): time along, value up from 0.
pub fn line_chart(id: &str, label: &str, points: &[(f64, f64)]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" role="img" aria-label="{label}">
<rect x="{PAD_L}" y="{PAD_T}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        CHART_W - PAD_L - 4.0,
        CHART_H - PAD_T - PAD_B
    );
    let pts = downsample(points);
    if pts.len() < 2 {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">collecting samples</text>"#,
            CHART_W / 2.0,
            CHART_H / 2.0
        );
        s.push_str("</svg>");
        return s;
    }
    let (t0, t1) = (pts[0].0, pts[pts.len() - 1].0);
    let top = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.1;
    let (w, h) = (CHART_W - PAD_L - 4.0, CHART_H - PAD_T - PAD_B);
    let xy = |(t, v): (f64, f64)| {
        (
            PAD_L + (t - t0) / (t1 - t0).max(1e-9) * w,
            PAD_T + h - v / top * h,
        )
    };
    let line: Vec<String> = pts
        .iter()
        .map(|&p| {
            let (x, y) = xy(p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline class="series" points="{}" fill="none" stroke="#2a6fdb" stroke-width="1.5"/>
<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>
<text x="{}" y="{}" font-size="10" text-anchor="end">0</text>
<text x="{PAD_L}" y="{}" font-size="10">{} s ago</text>
<text x="{}" y="{}" font-size="10" text-anchor="end">{label}; now</text>"##,
        line.join(" "),
        PAD_L - 4.0,
        PAD_T + 10.0,
        human(top),
        PAD_L - 4.0,
        PAD_T + h,
        CHART_H - 6.0,
        human(t1 - t0),
        CHART_W - 4.0,
        CHART_H - 6.0,
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64) -> RingPeer {
        RingPeer {
            id,
            addr: format!("127.0.0.1:{}", id % 60000),
        }
    }

    #[test]
    fn one_dot_one_arc_one_arrow_per_peer() {
        let peers = [p(1 << 60), p(1 << 62), p(3 << 62)];
        let s = ring(&peers, Some(1 << 62));
        assert_eq!(s.matches("data-peer=").count(), 3);
        assert_eq!(s.matches(r#"class="arc""#).count(), 3);
        assert_eq!(s.matches(r#"class="successor""#).count(), 3);
        assert_eq!(s.matches(r#"class="peer me""#).count(), 1);
        assert!(s.contains(&format!("data-peer=\"{:016x}\"", 1u64 << 62)));
    }

    #[test]
    fn a_peer_at_a_quarter_sits_at_three_o_clock() {
        let s = ring(&[p(1 << 62), p(1 << 63)], None);
        // id 2^62 is a quarter turn clockwise from the top: (CX + R, CY).
        assert!(s.contains(&format!(r#"cx="{:.1}" cy="{:.1}""#, CX + R, CY)));
        // The peer at 2^63 owns the quarter after 2^62; the one at 2^62 the
        // other three quarters, drawn as SVG's "large" arc.
        assert!(s.contains("25.0% of the ring"));
        assert!(s.contains("75.0% of the ring"));
        assert_eq!(s.matches(&format!("A{R},{R} 0 1 1")).count(), 1);
    }

    #[test]
    fn a_ring_of_one_owns_everything_and_has_no_arrow() {
        let s = ring(&[p(42)], Some(42));
        assert_eq!(s.matches(r#"class="arc""#).count(), 1);
        assert_eq!(s.matches(r#"class="successor""#).count(), 0);
        assert!(s.contains("1 peer known"));
    }

    #[test]
    fn addresses_are_escaped() {
        let evil = RingPeer {
            id: 7,
            addr: "<script>x</script>".into(),
        };
        let s = ring(&[evil], None);
        assert!(!s.contains("<script>"));
        assert!(s.contains("&lt;script&gt;"));
    }

    #[test]
    fn chart_draws_a_polyline_within_its_box() {
        let pts: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, (i % 7) as f64)).collect();
        let s = line_chart("c", "iterations/s", &pts);
        let poly = s
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let coords: Vec<(f64, f64)> = poly
            .split(' ')
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert!((MAX_POINTS / 2..=MAX_POINTS).contains(&coords.len()));
        for (x, y) in coords {
            assert!((PAD_L..=CHART_W).contains(&x), "x {x}");
            assert!((PAD_T..=CHART_H - PAD_B).contains(&y), "y {y}");
        }
        assert!(line_chart("c", "x", &pts[..1]).contains("collecting samples"));
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(12.5), "12.5");
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(2_000_000.0), "2M");
    }
}
