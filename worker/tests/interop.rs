//! The GIMPS interop round-trip: a Prime95 `worktodo.txt` of 20 mixed lines
//! is imported into a live grid of two peers (`worker import`), crunched,
//! and comes back as `results.json.txt` lines on the importing peer, each
//! with its assignment id, checked against the published list and an
//! independent residue oracle. The importing peer crunches nothing, so
//! every result travels across the grid before it is written.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use mersenne_common::ll::res64_hex;

fn aid(k: u64) -> String {
    format!("{:032X}", 0xA11D_0000_u64 + k)
}

#[test]
fn a_worktodo_of_20_lines_comes_back_as_results_json_with_aids() {
    let dir = tmpdir("interop");
    // Twelve LL lines in every form Prime95 writes them, and eight lines
    // the grid cannot run; a header and a comment are neither.
    let worktodo = format!(
        "[Worker #1]\n\
         ; from PrimeNet\n\
         Test={},4423,68,1\n\
         Test={},4327,68,0\n\
         DoubleCheck={},4253,66,1\n\
         DoubleCheck={},4001,66,1\n\
         Test={},3217,64,1\n\
         Test={},3011,64,0\n\
         Test=N/A,2281,63,1\n\
         DoubleCheck=N/A,2017,63,1\n\
         Test=N/A,2203,63,1\n\
         Test=2011,60,1\n\
         DoubleCheck=2003,60,1\n\
         Test=4007\n\
         PRP={},1,2,86243,-1,75,0\n\
         PRP=1,2,4409,-1,60,0\n\
         Factor={},1277,1,60\n\
         Pminus1=1,2,1277,-1,1000000,0\n\
         ECM2=1,2,1277,-1,50000,5000000,10\n\
         Test=4321,60,1\n\
         Test=143000017,76,1\n\
         DoubleCheck=9941x,66,1\n",
        aid(1),
        aid(2),
        aid(3),
        aid(4),
        aid(5),
        aid(6),
        aid(7),
        aid(8)
    );
    assert_eq!(
        worktodo
            .lines()
            .filter(|l| l.contains('=') && !l.starts_with(';'))
            .count(),
        20
    );
    let file = dir.join("worktodo.txt");
    std::fs::write(&file, &worktodo).unwrap();
    let want: BTreeMap<u64, Option<String>> = [
        (4423, Some(aid(1))),
        (4327, Some(aid(2))),
        (4253, Some(aid(3))),
        (4001, Some(aid(4))),
        (3217, Some(aid(5))),
        (3011, Some(aid(6))),
        (2281, None),
        (2017, None),
        (2203, None),
        (2011, None),
        (2003, None),
        (4007, None),
    ]
    .into_iter()
    .collect();

    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    let b = Peer::worker(&dir, "b", Some(&a.addr), &["--threads", "2"]);
    wait_for("the ring", Duration::from_secs(30), || {
        ring_formed(&[&a.addr, &b.addr])
    });

    let out = run_bounded(
        Command::new(worker_exe()).args(["import", file.to_str().unwrap(), "--peer", &a.addr]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("worker import:\n{stdout}");
    assert!(
        stdout.contains(
            "imported 12 LL tests (6 with an assignment id): 12 units created, 0 already existed; 8 lines not run"
        ),
        "{stdout}"
    );
    let not_run: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(": not run: "))
        .collect();
    assert_eq!(not_run.len(), 8, "{stdout}");
    for (line, why) in [
        (15, "PRP tests are not run"),
        (16, "PRP tests are not run"),
        (17, "trial factoring"),
        (18, "P-1"),
        (19, "ECM"),
        (20, "composite"),
        (21, "largest exponent"),
        (22, "not an exponent"),
    ] {
        let l = not_run
            .iter()
            .find(|l| l.starts_with(&format!("line {line}: ")))
            .unwrap_or_else(|| panic!("line {line} not reported: {stdout}"));
        assert!(l.contains(why), "line {line}: {l}");
    }

    // The importing peer writes one line per assignment once the result
    // reaches its table, whichever peer crunched it.
    let results = dir.join("a").join("results.json.txt");
    wait_for(
        "12 lines in a's results.json.txt",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&results)
                .map(|t| t.lines().count() >= 12)
                .unwrap_or(false)
        },
    );
    let text = std::fs::read_to_string(&results).unwrap();
    println!("a/results.json.txt:\n{text}");
    // `user` is b's ring id, from b's key, which a looked up by address.
    let b_id = status(&b.addr).expect("b's status").id;
    let mut got = BTreeMap::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let p = v["exponent"].as_u64().unwrap();
        let prime = KNOWN.contains(&p);
        assert_eq!(v["status"], if prime { "P" } else { "C" }, "{l}");
        assert_eq!(v["worktype"], "LL", "{l}");
        let res64 = if prime { 0 } else { res64_oracle(p) };
        assert_eq!(v["res64"], res64_hex(res64).as_str(), "{l}");
        assert_eq!(v["computer"], b.peer_id.as_str(), "crunched by b: {l}");
        assert_eq!(v["user"], b_id.as_str(), "b's ring id: {l}");
        assert!(got.insert(p, v["aid"].as_str().map(String::from)).is_none());
    }
    assert_eq!(got, want);
    // Every assignment closed; b, which imported nothing, wrote its own
    // units without aids.
    let open: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a").join("assignments.json")).unwrap())
            .unwrap();
    assert_eq!(open, serde_json::json!({}));
    let b_text = std::fs::read_to_string(dir.join("b").join("results.json.txt")).unwrap();
    assert!(b_text.lines().count() >= 12, "{b_text}");
    assert!(!b_text.contains("\"aid\""), "{b_text}");
    assert!(
        b_text
            .lines()
            .all(|l| l.contains(&format!("\"user\":\"{b_id}\""))),
        "{b_text}"
    );
}
