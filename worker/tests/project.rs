//! Project mode over real sockets: a coordinator holding the project key
//! and three admitted volunteers crunch a range to identical tables; a
//! stranger with no certificate and a revoked volunteer are refused by
//! every member and appear in no table and no ring; every result carries
//! its member's certificate. More work then enters under a grant the
//! operator signed (`coordinator grant`), submitted with `worker submit
//! --grant`; a forged grant is refused. A rogue member's write of a record
//! no grant covers is refused by the record's owner.

mod common;

use std::time::Duration;

use common::mallory::Mallory;
use common::*;
use mersenne_common::grid::WireUnit;
use mersenne_common::ll::Status;
use mersenne_common::ring::{Id, StoreOp};
use mersenne_common::work::UnitResult;
use mersenne_common::work::lease::{Signer, sign_leases};
use mersenne_common::work::{UnitRecord, unit_key};
use mersenne_worker::identity::Identity;
use mersenne_worker::identity::KEY_FILE as IDENTITY_KEY_FILE;
use mersenne_worker::net::{self, Request, Response, SwarmHandle, SwarmOptions, WireResult};

#[test]
fn admitted_volunteers_agree_and_strangers_and_revoked_members_are_refused() {
    let dir = tmpdir("project");
    let project = dir.join("project");
    let project_id = coordinator(&["project-key", "--dir", project.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(project_id.starts_with("12D3KooW"), "{project_id}");
    for name in ["w0", "w1", "w2", "revoked", "relay"] {
        admit(&project, &dir.join(name));
    }
    let revoked_id = volunteer_key(&dir.join("revoked"));
    coordinator(&["revoke", &revoked_id, "--dir", project.to_str().unwrap()]);

    let (from, to) = (2, 400);
    let seed = format!("{from}-{to}");
    let coord = Peer::start(
        &coordinator_exe(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--gossip-ms",
            "200",
            "--seed-range",
            &seed,
            "--project-dir",
            project.to_str().unwrap(),
        ],
        &dir.join("coord"),
        &dir.join("coord.log"),
    );
    let with_project = ["--project", project_id.as_str()];
    let members: Vec<Peer> = ["w0", "w1", "w2"]
        .iter()
        .map(|n| Peer::worker(&dir, n, Some(&coord.addr), &with_project))
        .collect();
    // The stranger runs in open mode (no certificate at all) and joins
    // through the coordinator.
    let stranger = Peer::worker(&dir, "stranger", Some(&coord.addr), &[]);
    // The revoked volunteer starts once w0 holds the list (gossiped by the
    // coordinator, saved under its --data), and joins through w0.
    wait_for(
        "w0 holds the revocation list",
        Duration::from_secs(30),
        || dir.join("w0/revocations").exists(),
    );
    let revoked = Peer::worker(&dir, "revoked", Some(&members[0].addr), &with_project);

    let mut all: Vec<&Peer> = members.iter().collect();
    all.push(&coord);
    let addrs: Vec<&str> = all.iter().map(|p| p.addr.as_str()).collect();
    wait_for("the ring of members", Duration::from_secs(60), || {
        ring_formed(&addrs)
    });
    let units = mersenne_common::primes::primes_in(from, to).len();
    wait_for("every table complete", Duration::from_secs(120), || {
        all.iter()
            .all(|p| table(&p.addr).is_some_and(|t| exponents(&t).len() == units))
    });
    wait_for("tables identical", Duration::from_secs(30), || {
        let t0 = table(&coord.addr);
        all.iter().all(|p| table(&p.addr) == t0)
    });
    let t = table(&coord.addr).unwrap();
    check_table(&t, from, to);
    let outsiders = [&stranger.peer_id, &revoked.peer_id];
    assert!(
        t.iter().all(|r| !outsiders.contains(&&r.computed_by)),
        "an outsider's result is in the table"
    );
    // Every row was crunched by a member and carries its certificate: the
    // project's, issued to the key that signed the result.
    let insiders: Vec<&String> = all.iter().map(|p| &p.peer_id).collect();
    for r in &t {
        assert!(insiders.contains(&&r.computed_by), "{r:?}");
    }
    assert_rows_certified(&t, &project_id);
    // No member has an outsider in its ring, and the outsiders hold no
    // unit records.
    let outsider_addrs = [&stranger.addr, &revoked.addr];
    for p in &all {
        let st = status(&p.addr).unwrap();
        assert!(
            st.successors
                .iter()
                .chain(st.predecessor.iter())
                .all(|(a, _)| !outsider_addrs.contains(&a)),
            "{} has an outsider in its ring: {st:?}",
            p.addr
        );
    }
    for o in [&stranger, &revoked] {
        assert!(units_held(&o.addr) == 0, "{} holds unit records", o.addr);
    }
    // Both were refused, and counted, where they knocked.
    assert!(status(&coord.addr).unwrap().not_member > 0);
    assert!(status(&members[0].addr).unwrap().not_member > 0);
    // Every member refuses a stranger's grid requests and submissions
    // (this client has a fresh key and no certificate) but shows it the
    // read-only table.
    for p in &all {
        for req in [
            Request::FindWork { max: 1 },
            Request::Submit {
                from: 401,
                to: 500,
                grant: None,
            },
        ] {
            let what = format!("{req:?}");
            match refusal(&p.addr, req) {
                Err(e) => assert!(e.to_string().contains("not a member"), "{what}: {e}"),
                Ok(other) => panic!("{}: {what} from a stranger gave {other:?}", p.addr),
            }
        }
        assert!(table(&p.addr).is_some());
    }
    // A member relays results that no member crunched: one signed by the
    // stranger's key with no certificate, one by the revoked volunteer's
    // key with its certificate, and one by the stranger's key carrying the
    // relay's own certificate. The relay's frames are a member's, so the
    // transport takes them; the grid refuses each result.
    let cert_of = |name: &str| {
        let b = std::fs::read(dir.join(name).join("membership.cert")).unwrap();
        Box::new(mersenne_common::membership::Certificate::from_bytes(&b).unwrap())
    };
    let signed_by = |name: &str, p: u64| {
        let id = Identity::load_or_create(&dir.join(name)).unwrap();
        id.sign_result(UnitResult {
            exponent: p,
            status: Status::Prime,
            res64: 0,
            shift: 1,
            engine: "fft".into(),
            computed_by: String::new(),
            finished_ms: mersenne_worker::node::now_ms(),
            crunch_ms: 1,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        })
    };
    let no_cert = signed_by("stranger", 11);
    let mut revoked_cert = signed_by("revoked", 23);
    revoked_cert.certificate = Some(cert_of("revoked"));
    let mut borrowed_cert = signed_by("stranger", 29);
    borrowed_cert.certificate = Some(cert_of("relay"));
    let relayed = [no_cert, revoked_cert, borrowed_cert];
    let refused_before = status(&members[0].addr).unwrap().refused_results;
    let answer = push_as_member(&dir.join("relay"), &project_id, &members[0].addr, &relayed);
    assert!(
        matches!(answer, Ok(Response::Ok)),
        "a member's push is answered: {answer:?}"
    );
    let refused_after = status(&members[0].addr).unwrap().refused_results;
    assert!(
        refused_after >= refused_before + relayed.len() as u64,
        "{refused_before} -> {refused_after}"
    );
    // Gossip has had its chance to spread anything taken.
    std::thread::sleep(Duration::from_secs(1));
    for p in &all {
        let t = table(&p.addr).unwrap();
        for r in &relayed {
            assert!(
                !t.iter().any(|x| x.computed_by == r.computed_by),
                "{}: a relayed outsider's result is in the table: {r:?}",
                p.addr
            );
        }
    }

    // More work enters under a grant the operator signs offline
    // (`coordinator grant`), submitted by anyone with `worker submit
    // --grant`: here from a client with no certificate.
    let grant_file = dir.join("work.grant");
    let said = coordinator(&[
        "grant",
        "--range",
        "401-600",
        "--dir",
        project.to_str().unwrap(),
        "--out",
        grant_file.to_str().unwrap(),
    ]);
    assert!(said.contains("granted 401-600"), "{said}");
    let grant = std::fs::read(&grant_file).unwrap();
    // A grant with one bit of its signature flipped is refused by the
    // peer, and creates nothing.
    let mut forged = grant.clone();
    *forged.last_mut().unwrap() ^= 1;
    let forged = mersenne_common::grant::WorkGrant::from_bytes(&forged).unwrap();
    match refusal(
        &members[1].addr,
        Request::Submit {
            from: 401,
            to: 600,
            grant: Some(forged),
        },
    ) {
        Err(e) => assert!(e.to_string().contains("signature does not verify"), "{e}"),
        Ok(other) => panic!("a forged grant gave {other:?}"),
    }
    // The client refuses a grant that does not cover the range it is
    // asked to submit, before sending anything.
    let out = worker_cli(&[
        "submit",
        "--range",
        "401-700",
        "--grant",
        grant_file.to_str().unwrap(),
        "--peer",
        &members[1].addr,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the grant covers 401-600, not 401-700"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = worker_cli(&[
        "submit",
        "--range",
        "401-600",
        "--grant",
        grant_file.to_str().unwrap(),
        "--peer",
        &members[1].addr,
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let granted = mersenne_common::primes::primes_in(401, 600).len();
    assert!(said.contains(&format!("{granted} units created")), "{said}");
    let units = mersenne_common::primes::primes_in(from, 600).len();
    wait_for(
        "the granted units crunched",
        Duration::from_secs(120),
        || {
            all.iter()
                .all(|p| table(&p.addr).is_some_and(|t| exponents(&t).len() == units))
        },
    );
    check_table(&table(&members[2].addr).unwrap(), from, 600);

    // A rogue member writes, over the ring protocol, the record of a unit
    // no grant covers (613, past the granted 401-600) at its live owner:
    // a claim in its own name, signed by its own key, as a compare-and-set
    // on nothing, which open mode would take (see the claims test). Project
    // mode creates only the records a project grant covers: the owner does
    // not answer, counts the refusal, and no peer holds a record of 613.
    let relay_key: [u8; 32] = std::fs::read(dir.join("relay").join(IDENTITY_KEY_FILE))
        .unwrap()
        .try_into()
        .unwrap();
    let relay_key = ed25519_dalek::SigningKey::from_bytes(&relay_key);
    let membership = mersenne_worker::node::project::load(
        &dir.join("relay"),
        &project_id,
        &relay_key.verifying_key().to_bytes(),
        mersenne_worker::node::now_ms(),
    )
    .unwrap();
    let mut rogue = Mallory::with(relay_key, Some(membership));
    let ungranted = 613;
    let (owner, held) = rogue.read(&addrs, ungranted);
    assert_eq!(held, None, "M{ungranted} has no record before the write");
    let fresh = UnitRecord::new(ungranted);
    let mut claim = fresh
        .claimed(&rogue.peer_id(), mersenne_worker::node::now_ms(), 30_000)
        .unwrap();
    sign_leases(Some(&fresh), &mut claim, &Signer::new(rogue.key.clone()));
    let before = status(&owner).unwrap().refused_records;
    let op = StoreOp::Cas {
        key: Id(unit_key(ungranted)),
        expected: 0,
        value: WireUnit::encode(&claim),
    };
    assert_eq!(
        rogue.store(&owner, op, Duration::from_secs(2)),
        None,
        "{owner} answered a member's write of an ungranted unit"
    );
    wait_for(
        "the owner counts the refused write",
        Duration::from_secs(10),
        || status(&owner).unwrap().refused_records > before,
    );
    assert_eq!(rogue.read(&[owner.as_str()], ungranted).1, None);
    for p in &all {
        let held = common::units(&p.addr).expect("the peer answers");
        assert!(
            held.iter().all(|u| u.exponent != ungranted),
            "{} holds a record of the ungranted M{ungranted}",
            p.addr
        );
    }
    drop(rogue);
    drop(revoked);
    drop(stranger);
    drop(all);
    drop(members);
    drop(coord);
}

/// Why a test's request got no answer.
#[derive(Debug, thiserror::Error)]
enum NoAnswer {
    /// Nothing came back within the test's bound.
    #[error("no answer in 10 s")]
    Timeout,
    /// The member's own transport could not start.
    #[error("starting the member's swarm: {0}")]
    Swarm(net::NetError),
    /// The peer (or the transport) refused the request.
    #[error(transparent)]
    Refused(#[from] net::NetError),
}

/// One request from a fresh key, bounded at 10 s: the answer, or the
/// error the peer (or the transport) gave.
fn refusal(addr: &str, req: Request) -> Result<Response, NoAnswer> {
    rt().block_on(async {
        let answer = tokio::time::timeout(Duration::from_secs(10), net::one_request(addr, req))
            .await
            .map_err(|_| NoAnswer::Timeout)?;
        Ok(answer?)
    })
}

/// Pushes `results` to `addr` as the member whose data (key and
/// certificate) is in `data`, bounded at 10 s.
fn push_as_member(
    data: &std::path::Path,
    project_id: &str,
    addr: &str,
    results: &[UnitResult],
) -> Result<Response, NoAnswer> {
    let id = Identity::load_or_create(data).unwrap();
    let m = mersenne_worker::node::project::load(
        data,
        project_id,
        &id.public_key(),
        mersenne_worker::node::now_ms(),
    )
    .unwrap();
    rt().block_on(async {
        let (swarm, _) = SwarmHandle::spawn(SwarmOptions {
            keypair: id.keypair(),
            membership: Some(std::sync::Arc::new(std::sync::Mutex::new(m))),
            ..SwarmOptions::ephemeral()
        })
        .await
        .map_err(NoAnswer::Swarm)?;
        let req = Request::PushResults {
            results: results.iter().map(WireResult::from).collect(),
        };
        Ok(net::Client::on(swarm)
            .request(addr, req, Duration::from_secs(10))
            .await?)
    })
}

/// Runs `worker args` to completion, bounded at 30 s.
fn worker_cli(args: &[&str]) -> std::process::Output {
    run_bounded(
        std::process::Command::new(worker_exe()).args(args),
        Duration::from_secs(30),
    )
}

/// Unit records a peer holds.
fn units_held(addr: &str) -> usize {
    units(addr).expect("the peer answers").len()
}
