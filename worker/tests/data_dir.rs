//! What held in the security review and must keep holding: one data
//! directory belongs to one peer at a time, and a database that is not one
//! is refused by name, left as it was.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// A peer on `data` that is expected to refuse to start (bounded at 30 s).
fn start_on(data: &Path) -> Output {
    run_bounded(
        Command::new(worker_exe()).args([
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "0",
            "--data",
            data.to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    )
}

#[test]
fn a_second_peer_on_a_data_directory_in_use_is_refused_by_name() {
    let dir = tmpdir("data_in_use");
    let a = Peer::worker(&dir, "a", None, &["--threads", "0"]);
    let data = dir.join("a");
    let o = start_on(&data);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a second peer started on {data:?}: {err}"
    );
    assert!(
        err.contains(data.to_str().unwrap()),
        "the path is not named: {err}"
    );
    // The first peer never noticed.
    let st = status(&a.addr).expect("the first peer still answers");
    assert_eq!(st.peer_id, a.peer_id);
    drop(a);
}

#[test]
fn a_database_that_is_not_one_is_refused_by_name_and_left_as_it_was() {
    let dir = tmpdir("garbage_db");
    let data = dir.join("peer");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("results.redb");
    // Not empty (that case has its own message): bytes of no database.
    let garbage: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();
    let o = start_on(&data);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a peer started on garbage: {err}");
    assert!(
        err.contains(db.to_str().unwrap()),
        "the file is not named: {err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "the file was changed");
}
