//! gridsim's figures: what each means (the long help), the JSON object
//! that carries them and the summary printed for a person.

use mersenne_common::sim::grid::{GridReport, GridScenario, GridSimConfig};

pub(crate) const FIGURES: &str = "\
Figures (the JSON object on the last line with --json), over the live peers at the end of
the run (every table complete and identical, one ring):
  rings_after_heal        cycles of first-successor pointers among ring members
  periods_to_one_ring     periods from the last heal (end of cut or pause, the mass failure,
                          the end of churn) until one ring with every first successor right
  results_lost            results that left their cruncher (acknowledged in a record, or in
                          another live table or record when it died or, sent before it died,
                          once they arrived) or whose cruncher lives, held by no live table
                          and no live record
  records_lost            units whose record is missing at the key's true owner or at the
                          owner's first successor (not \"anywhere\")
  acked_writes_lost       results an owner acknowledged as stored that the record at the
                          key's true owner lacks
  double_owned_keys       unit keys that two or more members believe they own
  zombies                 live peers outside the ring
  units_never_done        units without a result in any live table
  duplicate_crunch_fraction  crunches finished beyond the first of each unit / units finished
  tables_converged        every live table holds every unit and all tables are identical
  seconds_to_converge     simulated seconds from the submission until that first held
  efficiency              ideal crunch time (each unit once, on one core) / core time offered
                          (each live peer's slots x time alive) from the submission until the
                          tables converged; busy_fraction is worker local's figure (crunch
                          time of every finished crunch, duplicates included, / core time)
  records_held_mean/max   unit records each live member holds (owned and replicas), against
                          records_held_ideal = (r + 1) x units / members
  records_held_owned/replica/other  that mean split by the holder's place to each record's
                          true owner: the owner, one of its r successors, or neither (a copy
                          nobody needs the holder to keep)
Then the grid runs on --settle-secs T (default 120) with no fault, and counts again:
  settled_records_held_*  the copies held counted again (mean, max, ideal, owned, replica,
                          other)
  settled_seconds_to_no_other  seconds into the settle phase from which no member held an
                          \"other\" copy (checked once a period; null: some still were at its end)
  settled_records_lost, settled_acked_writes_lost, settled_results_lost, settled_rings,
  settled_zombies         the losses and the ring counted again at its end
  messages_per_unit       ring messages, peer calls and answers from the submission on / units
  messages_by_kind        those messages by kind (ring:<Body>, call:<request>, answer:<answer>)
  results_shipped_per_unit  unit results carried by gossip and anti-entropy calls and answers
                          from the submission on / units
With --liars or --checks (double checks scheduled by the grid; the run lasts until no crunch
is left), over every live table's results merged:
  wrong_verified_rows     verified rows whose answer is not the true one
  verified                units verified; waiting: the others, by reason
  validation_overhead     crunch time of every finished crunch / one test per unit (2 is
                          plain double checking)
  median/p99_seconds_to_verified  from a unit's first result to the result that verified it
  liars_quarantined       liars in quarantine by the final table (honest_quarantined: others)";

pub(crate) fn json(r: &GridReport, scenario: GridScenario, wall: f64) -> serde_json::Value {
    let mut v = serde_json::json!({
        "nodes": r.nodes,
        "seed": r.seed,
        "scenario": format!("{scenario:?}"),
        "units": r.units,
        "submitted": r.submitted,
        "live_nodes": r.live_nodes,
        "rings_after_heal": r.rings_after_heal,
        "periods_to_one_ring": r.periods_to_one_ring,
        "results_lost": r.results_lost,
        "records_lost": r.records_lost,
        "acked_writes_lost": r.acked_writes_lost,
        "double_owned_keys": r.double_owned_keys,
        "zombies": r.zombies,
        "units_never_done": r.units_never_done,
        "duplicate_crunch_fraction": r.duplicate_crunch_fraction,
        "tables_converged": r.tables_converged,
        "seconds_to_converge": r.seconds_to_converge,
        "seconds_to_all_done": r.seconds_to_all_done,
        "efficiency": r.efficiency,
        "busy_fraction": r.busy_fraction,
        "messages_per_unit": r.messages_per_unit,
        "records_held_mean": r.records_held_mean,
        "records_held_max": r.records_held_max,
        "records_held_ideal": r.records_held_ideal,
        "records_held_owned": r.records_held_by_role.owned,
        "records_held_replica": r.records_held_by_role.replica,
        "records_held_other": r.records_held_by_role.other,
        "messages_by_kind": r.traffic.messages,
        "results_shipped_per_unit": r.traffic.results_shipped as f64 / r.units.max(1) as f64,
        "crunches": r.crunches,
        "crunches_lost": r.crunches_lost,
        "results_tracked": r.results_tracked,
        "results_acked": r.results_acked,
        "crashes": r.crashes,
        "joins": r.joins,
        "failed_joins": r.failed_joins,
        "sim_seconds": r.sim_seconds,
        "wall_seconds": wall,
    });
    if let Some(s) = &r.settled {
        for (k, x) in [
            ("settled_seconds", serde_json::json!(s.seconds)),
            ("settled_records_held_mean", s.records_held_mean.into()),
            ("settled_records_held_max", s.records_held_max.into()),
            ("settled_records_held_ideal", s.records_held_ideal.into()),
            (
                "settled_records_held_owned",
                s.records_held_by_role.owned.into(),
            ),
            (
                "settled_records_held_replica",
                s.records_held_by_role.replica.into(),
            ),
            (
                "settled_records_held_other",
                s.records_held_by_role.other.into(),
            ),
            (
                "settled_seconds_to_no_other",
                serde_json::json!(s.seconds_to_no_other),
            ),
            ("settled_records_lost", s.records_lost.into()),
            ("settled_acked_writes_lost", s.acked_writes_lost.into()),
            ("settled_results_lost", s.results_lost.into()),
            ("settled_rings", s.rings.into()),
            ("settled_zombies", s.zombies.into()),
        ] {
            v[k] = x;
        }
    }
    if let Some(t) = &r.trust {
        for (k, x) in [
            ("liars", serde_json::json!(t.liars)),
            ("liars_quarantined", t.liars_quarantined.into()),
            ("honest_quarantined", t.honest_quarantined.into()),
            ("verified", t.verified.into()),
            ("wrong_verified_rows", t.wrong_verified_rows.into()),
            ("waiting", serde_json::json!(t.waiting)),
            ("validation_overhead", t.validation_overhead.into()),
            (
                "median_seconds_to_verified",
                serde_json::json!(t.median_seconds_to_verified),
            ),
            (
                "p99_seconds_to_verified",
                serde_json::json!(t.p99_seconds_to_verified),
            ),
        ] {
            v[k] = x;
        }
    }
    v
}

pub(crate) fn print_summary(
    r: &GridReport,
    cfg: &GridSimConfig,
    scenario: GridScenario,
    wall: f64,
) {
    println!(
        "scenario {scenario:?}, {} peers ({} live at the end, {} crashed, {} joined), range {}-{} ({} units{})",
        r.nodes,
        r.live_nodes,
        r.crashes,
        r.joins,
        cfg.range.0,
        cfg.range.1,
        r.units,
        if r.submitted {
            ""
        } else {
            ", submission incomplete"
        }
    );
    let secs = |s: Option<f64>| s.map_or("never".to_string(), |s| format!("{s:.0} s"));
    println!(
        "units: {} never done; all done after {}; tables converged: {} (after {})",
        r.units_never_done,
        secs(r.seconds_to_all_done),
        r.tables_converged,
        secs(r.seconds_to_converge)
    );
    println!(
        "losses: {} of {} results lost, {} records lost, {} of {} acknowledged results lost",
        r.results_lost, r.results_tracked, r.records_lost, r.acked_writes_lost, r.results_acked
    );
    println!(
        "ring: {} rings, one ring after {} periods, {} zombies, {} keys owned twice",
        r.rings_after_heal,
        r.periods_to_one_ring
            .map_or("n/a".to_string(), |p| p.to_string()),
        r.zombies,
        r.double_owned_keys
    );
    println!(
        "records held per member: mean {:.1}, max {} (ideal (r + 1) U / N = {:.1}); owned {:.1}, replica {:.1}, other {:.1}",
        r.records_held_mean,
        r.records_held_max,
        r.records_held_ideal,
        r.records_held_by_role.owned,
        r.records_held_by_role.replica,
        r.records_held_by_role.other
    );
    println!(
        "cost: {} crunches ({} cut short by crashes), duplicate fraction {:.4}, efficiency {:.3} (busy {:.3}), {:.0} messages per unit",
        r.crunches,
        r.crunches_lost,
        r.duplicate_crunch_fraction,
        r.efficiency,
        r.busy_fraction,
        r.messages_per_unit
    );
    if let Some(st) = &r.settled {
        println!(
            "after {:.0} s more with no fault: records held per member: mean {:.1}, max {} (ideal {:.1}); owned {:.1}, replica {:.1}, other {:.1}; no other copy from {}; {} records, {} acknowledged results, {} results lost; {} rings, {} zombies",
            st.seconds,
            st.records_held_mean,
            st.records_held_max,
            st.records_held_ideal,
            st.records_held_by_role.owned,
            st.records_held_by_role.replica,
            st.records_held_by_role.other,
            secs(st.seconds_to_no_other),
            st.records_lost,
            st.acked_writes_lost,
            st.results_lost,
            st.rings,
            st.zombies
        );
    }
    if let Some(t) = &r.trust {
        println!(
            "trust: {} liars ({} quarantined, {} honest peers quarantined); {} of {} units verified, {} wrong verified rows; waiting {:?}",
            t.liars,
            t.liars_quarantined,
            t.honest_quarantined,
            t.verified,
            r.units,
            t.wrong_verified_rows,
            t.waiting
        );
        println!(
            "validation overhead {:.3}; seconds from first result to verified: median {}, p99 {}",
            t.validation_overhead,
            secs(t.median_seconds_to_verified),
            secs(t.p99_seconds_to_verified)
        );
    }
    let mut kinds: Vec<_> = r.traffic.messages.iter().collect();
    kinds.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    let per_unit = |n: u64| n as f64 / r.units.max(1) as f64;
    let top: Vec<String> = kinds
        .iter()
        .take(6)
        .map(|(k, n)| format!("{k} {:.0}", per_unit(**n)))
        .collect();
    println!(
        "messages per unit by kind: {}; {:.0} results shipped per unit",
        top.join(", "),
        per_unit(r.traffic.results_shipped)
    );
    println!("{:.0} simulated s in {wall:.1} s wall", r.sim_seconds);
}
