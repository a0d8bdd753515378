//! Restarts: a peer resumes its checkpoint after a restart, a peer that
//! leaves on SIGTERM gives its lease back, and a whole grid stopped at once
//! picks up where it was.

mod common;

use std::time::Duration;

use common::*;
use mersenne_common::ll::Status;
use mersenne_common::primes::primes_in;
use mersenne_common::work::UnitResult;
use mersenne_worker::net;

#[test]
fn a_restarted_peer_resumes_its_checkpoint_and_catches_up() {
    let dir = tmpdir("restart");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    // B's lease is long, so nobody else takes its unit while it is down.
    let b_args = ["--lease-secs", "120"];
    let mut b = Peer::worker(&dir, "b", Some(&a.addr), &b_args);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    // B checkpoints at the end of a step once a second
    // (`--checkpoint-secs 1`) has passed since its last checkpoint. B is
    // frozen as soon as its status shows a step of M86243 done, and that
    // second passes while it is frozen: on SIGCONT it writes its first
    // checkpoint at the end of the step it is in, however fast this
    // machine crunches (M86243 is far more than a step or two of work),
    // and is frozen again once the file is there.
    let big = 86243;
    submit(&a.addr, big, big);
    let ckpt = dir
        .join("b")
        .join("checkpoints")
        .join(format!("{big}.ckpt"));
    let t = std::time::Instant::now();
    loop {
        let s = status(&b.addr).and_then(|s| s.units.into_iter().find(|u| u.exponent == big));
        if s.is_some_and(|u| u.iteration > 0) {
            b.guard.signal("STOP");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "B did not start M{big}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // (On a machine so loaded that the status took a second, B may have
    // checkpointed already; then it is frozen with its checkpoint.)
    if !ckpt.exists() {
        std::thread::sleep(Duration::from_millis(1500));
        b.guard.signal("CONT");
        let t = std::time::Instant::now();
        while !ckpt.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no checkpoint of M{big} within 30 s of B going on"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        b.guard.signal("STOP");
    }
    // With B frozen, the checkpoint is still there: B had not finished
    // the unit (a finished unit's checkpoint is removed).
    assert!(
        ckpt.exists(),
        "B finished M{big} between its first checkpoint and the freeze"
    );
    let saved = mersenne_worker::ckptfile::load_checkpoint(&ckpt, big)
        .expect("B's checkpoint reads back")
        .value
        .iteration;
    assert!(
        saved > 0 && saved < big - 2,
        "checkpoint at iteration {saved}"
    );
    b.kill();
    // While B is away, C crunches a small range; B misses those results.
    let c = Peer::worker(&dir, "c", Some(&a.addr), &[]);
    // Submit through C only once A and C form the ring: a peer still
    // joining holds its creations until it is in a ring, which may take
    // longer than one request's 10 s timeout while A is still dropping B.
    wait_for("the ring of A and C", Duration::from_secs(60), || {
        ring_formed(&[&a.addr, &c.addr])
    });
    let (from, to) = (2, 400);
    let small = primes_in(from, to);
    submit(&c.addr, from, to);
    wait_for("small range done", Duration::from_secs(60), || {
        table(&a.addr).is_some_and(|t| exponents(&t).len() == small.len())
    });
    // Same data directory, a fresh port: the grid knows B by its key.
    let b = Peer::worker(&dir, "b", Some(&a.addr), &b_args);
    wait_for(
        "B finishes M86243 and catches up",
        Duration::from_secs(180),
        || table(&b.addr).is_some_and(|t| exponents(&t).len() == small.len() + 1),
    );
    let t = table(&b.addr).unwrap();
    let r = t.iter().find(|r| r.exponent == big).unwrap();
    assert_eq!(r.status, Status::Prime);
    assert_eq!(r.computed_by, b.peer_id);
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
    assert_eq!(
        iteration, saved,
        "B resumed elsewhere than its checkpoint: {resumed}"
    );
    // B's record of M86243 from its disk was older than the ring's: the
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
    b.guard.signal("TERM");
    let code = b.guard.wait_exit(Duration::from_secs(30));
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
    assert_eq!(r.computed_by, c.peer_id);
    drop((a, b, c));
}

#[test]
fn unit_records_survive_a_restart_of_the_whole_grid() {
    let dir = tmpdir("wholegrid");
    let mut a = Peer::worker(&dir, "a", None, &[]);
    let mut b = Peer::worker(&dir, "b", Some(&a.addr), &[]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });
    // M132049 keeps one peer busy for seconds (units are claimed largest
    // first, so it starts at once), while the 303 small units take about
    // a second in all: the stop below comes with units left — some
    // crunched, some claimed, some never started. (M21701, used before,
    // could finish before the first poll on a fast, idle machine.)
    let big = 132_049;
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
    a.guard.signal("TERM");
    b.kill();
    let code = a.guard.wait_exit(Duration::from_secs(40));
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
}
