//! `worker status`: the ring and the units as one peer sees them.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;

use super::LOCAL_PEER;
use crate::net::{NodeStatus, Request, Response, one_request};
use crate::node::UnitProgress;

/// `worker status`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  worker status --peer 127.0.0.1:7700 --json")]
pub struct StatusArgs {
    /// The peer to ask.
    #[arg(long, value_name = "ADDR", default_value = LOCAL_PEER)]
    pub peer: String,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `worker status`.
pub async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let st: NodeStatus = match one_request(&a.peer, Request::Status)
        .await
        .with_context(|| format!("asking {} for its status", a.peer))?
    {
        Response::Status(s) => *s,
        other => bail!("unexpected answer from {}: {other:?}", a.peer),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&st)?)?;
        return Ok(());
    }
    let peer = |p: &(String, String)| format!("{} ({})", p.0, p.1);
    writeln!(out, "node         {} (ring id {})", st.addr, st.id)?;
    writeln!(out, "peer id      {}", st.peer_id)?;
    if !st.multiaddr.is_empty() {
        writeln!(out, "multiaddr    {}", st.multiaddr)?;
    }
    writeln!(
        out,
        "ring         {}; {} peers known",
        if st.membership.is_empty() {
            if st.member { "member" } else { "joining" }
        } else {
            st.membership.as_str()
        },
        st.known_peers
    )?;
    writeln!(
        out,
        "predecessor  {}",
        st.predecessor
            .as_ref()
            .map(peer)
            .unwrap_or_else(|| "(none)".into())
    )?;
    writeln!(
        out,
        "successors   {}",
        if st.successors.is_empty() {
            "(none: a ring of one)".to_string()
        } else {
            st.successors
                .iter()
                .map(peer)
                .collect::<Vec<_>>()
                .join(", ")
        }
    )?;
    writeln!(
        out,
        "fingers      {} entries, {} distinct nodes",
        st.fingers, st.finger_nodes
    )?;
    writeln!(
        out,
        "units held   {} ({} owned here: submitted {}, claimed {}, done {}; the rest are replicas)",
        st.held, st.owned, st.submitted, st.claimed, st.done
    )?;
    if !st.paused.is_empty() {
        writeln!(out, "paused       {}", st.paused.join(", "))?;
    }
    if st.units.is_empty() && st.crunching.is_empty() {
        writeln!(out, "crunching    nothing")?;
    } else if st.units.is_empty() {
        let ps: Vec<String> = st.crunching.iter().map(|p| format!("M{p}")).collect();
        writeln!(out, "crunching    {}", ps.join(", "))?;
    } else {
        writeln!(out, "crunching    {} units", st.units.len())?;
        for u in &st.units {
            writeln!(out, "  {}", unit_line(u))?;
        }
    }
    if let Some(m) = &st.memory {
        for line in memory_lines(m) {
            writeln!(out, "{line}")?;
        }
    }
    writeln!(out, "{}", reputation_line(st.reputation.as_ref()))?;
    writeln!(out, "finished     {} units here", st.finished)?;
    writeln!(out, "result table {} exponents", st.results)?;
    writeln!(
        out,
        "throughput   {:.0} LL iterations/s over {:.0} s",
        st.iterations_per_sec, st.uptime_secs
    )?;
    writeln!(
        out,
        "messages     {} in, {} out ({} ring messages dropped on full queues, {} refused as forged, {} frames refused as malformed); {} ring store operations; {} connections open",
        st.messages_in,
        st.messages_out,
        st.ring_dropped,
        st.ring_forged,
        st.malformed,
        st.ring_ops,
        st.connections
    )?;
    if st.not_member > 0 {
        writeln!(
            out,
            "project      {} frames refused from keys without a valid certificate",
            st.not_member
        )?;
    }
    writeln!(
        out,
        "claims       {} ({:.2} ms each to find and claim), {} lease renewals",
        st.claims,
        st.claim_ms_total / st.claims.max(1) as f64,
        st.renewals
    )?;
    writeln!(
        out,
        "refused      {} results (unsigned or forged), {} unit-record writes (illegal steps)",
        st.refused_results, st.refused_records
    )?;
    // A leaf worker listens nowhere, so its status is read here, at the
    // gateway it polls.
    for (leaf, units) in &st.leaves {
        let units: Vec<String> = units.iter().map(|p| format!("M{p}")).collect();
        writeln!(out, "leaf         {leaf} crunching {}", units.join(" "))?;
    }
    out.flush()?;
    Ok(())
}

/// One unit in progress: `M132049  iteration 65000/132047 (49.2%), 0.250 ms/iter, ETA 16s`.
pub fn unit_line(u: &UnitProgress) -> String {
    format!(
        "M{:<9} iteration {}/{} ({:.1}%), {:.3} ms/iter, ETA {}",
        u.exponent,
        u.iteration,
        u.total,
        u.percent(),
        u.ms_per_iter,
        crate::progress::duration(u.eta_secs().unwrap_or(f64::NAN))
    )
}

/// The peer's own standing: how its results fared against verified answers,
/// and what share of its first results the grid double-checks.
pub fn reputation_line(r: Option<&crate::net::OwnReputation>) -> String {
    match r {
        None => "reputation   none yet (no result of this peer judged)".into(),
        Some(r) if r.quarantined => format!(
            "reputation   QUARANTINED: {} bad, {} verified ({} since the last bad); its results count only once others verify them",
            r.bad, r.verified, r.streak
        ),
        Some(r) => format!(
            "reputation   {} verified, {} bad ({} in a row); {:.0}% of its first results double-checked",
            r.verified,
            r.bad,
            r.streak,
            r.check_rate * 100.0
        ),
    }
}

/// The `--max-memory` lines: the budget, then each unit waiting for memory
/// or refused as too large, with what it needs.
pub fn memory_lines(m: &crate::citizen::memory::MemoryStatus) -> Vec<String> {
    use crate::citizen::memory::human;
    let mut v = vec![format!(
        "memory       {} of --max-memory {} held by units in progress",
        human(m.in_use),
        human(m.cap)
    )];
    for (p, need) in &m.waiting {
        v.push(format!(
            "  M{p:<9} waiting for memory: needs {}, {} free",
            human(*need),
            human(m.cap.saturating_sub(m.in_use))
        ));
    }
    for (p, need) in &m.refused {
        v.push(format!(
            "  M{p:<9} refused: needs {}, more than --max-memory; given back to the grid",
            human(*need)
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_lines_say_why_a_unit_is_not_crunched() {
        let m = crate::citizen::memory::MemoryStatus {
            cap: 64 << 20,
            in_use: 40 << 20,
            waiting: vec![(216091, 30 << 20)],
            refused: vec![(1257787, 100 << 20)],
        };
        assert_eq!(
            memory_lines(&m),
            vec![
                "memory       40 MiB of --max-memory 64 MiB held by units in progress",
                "  M216091    waiting for memory: needs 30 MiB, 24 MiB free",
                "  M1257787   refused: needs 100 MiB, more than --max-memory; given back to the grid",
            ]
        );
    }

    #[test]
    fn the_reputation_line_says_trusted_new_or_quarantined() {
        use crate::net::OwnReputation;
        assert_eq!(
            reputation_line(None),
            "reputation   none yet (no result of this peer judged)"
        );
        let trusted = OwnReputation {
            verified: 40,
            bad: 0,
            streak: 40,
            quarantined: false,
            check_rate: 0.25,
        };
        assert_eq!(
            reputation_line(Some(&trusted)),
            "reputation   40 verified, 0 bad (40 in a row); 25% of its first results double-checked"
        );
        let liar = OwnReputation {
            verified: 0,
            bad: 42,
            streak: 0,
            quarantined: true,
            check_rate: 1.0,
        };
        assert!(
            reputation_line(Some(&liar))
                .starts_with("reputation   QUARANTINED: 42 bad, 0 verified"),
            "{}",
            reputation_line(Some(&liar))
        );
    }

    #[test]
    fn a_unit_line_shows_iteration_percent_rate_and_eta() {
        let u = UnitProgress {
            exponent: 132049,
            iteration: 65000,
            total: 132047,
            ms_per_iter: 0.25,
        };
        assert_eq!(
            unit_line(&u),
            "M132049    iteration 65000/132047 (49.2%), 0.250 ms/iter, ETA 17s"
        );
    }
}
