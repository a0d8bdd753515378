use super::*;

fn limiter() -> Limiter {
    Limiter::new(ServerLimits {
        max_connections: 2,
        max_connections_per_source: 2,
        idle: Duration::from_secs(1),
        submit_exponents_per_min: 6000,
        results_per_sec: 100,
        request_bytes_per_sec: 1000,
    })
}

#[test]
fn connections_are_capped_and_permits_come_back() {
    let l = limiter();
    let (x, y): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let a = l.admit(x).unwrap();
    let _b = l.admit(y).unwrap();
    assert_eq!(l.admit(x).err(), Some(Refused::Full));
    assert_eq!(l.open_connections(), 2);
    drop(a);
    assert_eq!(l.open_connections(), 1);
    assert!(l.admit(x).is_ok());
}

#[test]
fn one_source_cannot_take_every_slot() {
    let l = Limiter::new(ServerLimits {
        max_connections: 10,
        max_connections_per_source: 3,
        ..ServerLimits::default()
    });
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let held: Vec<_> = (0..3).map(|_| l.admit(ip("10.0.0.1")).unwrap()).collect();
    assert_eq!(l.admit(ip("10.0.0.1")).err(), Some(Refused::SourceFull));
    // The same host as IPv4 mapped into IPv6 is the same source.
    assert_eq!(
        l.admit(ip("::ffff:10.0.0.1")).err(),
        Some(Refused::SourceFull)
    );
    // Another address is served.
    let other = l.admit(ip("10.0.0.2")).unwrap();
    // IPv6 counts per /64: three addresses of one /64 fill it, one of
    // the next /64 is another source.
    let v6: Vec<_> = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
        .iter()
        .map(|a| l.admit(ip(a)).unwrap())
        .collect();
    assert_eq!(
        l.admit(ip("2001:db8:1:2::77")).err(),
        Some(Refused::SourceFull)
    );
    assert!(l.admit(ip("2001:db8:1:3::1")).is_ok());
    // Closing one gives its slot back to that source only, and the map
    // forgets a source with nothing open.
    drop(held);
    assert!(l.admit(ip("10.0.0.1")).is_ok());
    drop((other, v6));
    assert!(
        l.open.lock().unwrap().is_empty(),
        "{:?}",
        l.open.lock().unwrap()
    );
}

/// A sender: test key `n` at `ip`.
fn who(ip: IpAddr, n: u8) -> Sender {
    let key = libp2p::identity::Keypair::ed25519_from_bytes([n; 32]).unwrap();
    Sender {
        key: key.public().to_peer_id(),
        ip,
    }
}

#[test]
fn a_flooding_key_is_throttled_while_others_at_its_address_get_through() {
    let l = limiter();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let t0 = Instant::now();
    // The flooder spends its key's burst, then is refused, and its
    // refused pushes cost the address nothing.
    assert_eq!(
        l.charge_at(who(ip, 1), Charge::Results(1000), t0, false),
        Ok(())
    );
    for _ in 0..100 {
        let e = l.charge_at(who(ip, 1), Charge::Results(1000), t0, false);
        assert!(e.unwrap_err().payer.starts_with("key "));
    }
    // Another key at the same address has a budget of its own, and so
    // does a third; the address's share is SOURCE_SHARE keys' worth.
    for n in 2..=SOURCE_SHARE as u8 {
        assert_eq!(
            l.charge_at(who(ip, n), Charge::Results(1000), t0, false),
            Ok(())
        );
    }
    let e = l
        .charge_at(who(ip, 9), Charge::Results(1), t0, false)
        .unwrap_err();
    assert_eq!(e.payer, "source 10.1.2.3", "{e}");
    // The same key from another address pays its key's budget there too.
    let there: IpAddr = "10.4.4.4".parse().unwrap();
    assert!(
        l.charge_at(who(there, 1), Charge::Results(1), t0, false)
            .is_err()
    );
    assert_eq!(
        l.charge_at(who(there, 9), Charge::Results(1000), t0, false),
        Ok(())
    );
}

#[test]
fn budgets_refuse_a_burst_and_refill_with_time() {
    let l = limiter();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let other: IpAddr = "10.9.9.9".parse().unwrap();
    let t0 = Instant::now();
    // Burst: ten seconds of results.
    assert_eq!(
        l.charge_at(who(ip, 1), Charge::Results(1000), t0, false),
        Ok(())
    );
    let e = l
        .charge_at(who(ip, 1), Charge::Results(1), t0, false)
        .unwrap_err();
    assert_eq!(e.what, "pushed results");
    assert!(e.payer.starts_with("key 12D3KooW"), "{e}");
    assert!(e.retry_ms > 0 && e.retry_ms <= 10, "{e}");
    // Another source has its own budget.
    assert_eq!(
        l.charge_at(who(other, 2), Charge::Results(1000), t0, false),
        Ok(())
    );
    // One second refills a hundred.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(
        l.charge_at(who(ip, 1), Charge::Results(100), t1, false),
        Ok(())
    );
    assert!(
        l.charge_at(who(ip, 1), Charge::Results(1), t1, false)
            .is_err()
    );
    // A submission costs at least SUBMIT_MIN_COST.
    for _ in 0..6 {
        assert_eq!(
            l.charge_at(who(ip, 1), Charge::Submit(1), t0, false),
            Ok(())
        );
    }
    assert!(
        l.charge_at(who(ip, 1), Charge::Submit(1), t0, false)
            .is_err()
    );
    assert!(
        l.charge_at(who(ip, 1), Charge::Bytes(10_001), t0, false)
            .is_err()
    );
    // An answer's cost leaves a debt: 1,500 results answered to a source
    // with a full bucket (1,000) must wait 5 s, not 0.
    let d: IpAddr = "10.7.7.7".parse().unwrap();
    l.charge_at(who(d, 3), Charge::Results(1500), t0, true)
        .unwrap();
    assert!(
        l.charge_at(
            who(d, 3),
            Charge::Results(1),
            t0 + Duration::from_millis(4900),
            false
        )
        .is_err()
    );
    assert_eq!(
        l.charge_at(
            who(d, 3),
            Charge::Results(1),
            t0 + Duration::from_millis(5100),
            false
        ),
        Ok(())
    );
}

#[test]
fn sources_remembered_stay_bounded() {
    let l = limiter();
    let t0 = Instant::now();
    for i in 0..(MAX_SOURCES as u32 + 100) {
        let ip = IpAddr::from(i.to_be_bytes());
        l.charge_at(who(ip, 1), Charge::Bytes(1), t0, false)
            .unwrap();
    }
    assert_eq!(l.sources.lock().unwrap().len(), MAX_SOURCES);
}

#[test]
fn a_full_map_never_evicts_the_payer_being_charged() {
    let l = limiter();
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let ip = |i: u32| IpAddr::from(i.to_be_bytes());
    // Key 1 is left the longest idle payer of all.
    l.charge_at(who(ip(0), 1), Charge::Bytes(1), ms(0), false)
        .unwrap();
    l.charge_at(who(ip(0), 3), Charge::Bytes(1), ms(1), false)
        .unwrap();
    let mut i = 1;
    while l.sources.lock().unwrap().len() < MAX_SOURCES {
        l.charge_at(who(ip(i), 2), Charge::Bytes(1), ms(2), false)
            .unwrap();
        i += 1;
    }
    // Key 1 comes back from a new source at a full map: the eviction that
    // makes room must not pick key 1 itself, which would then be written
    // back beside the new source, one past the bound.
    l.charge_at(who(ip(i), 1), Charge::Bytes(1), ms(3), false)
        .unwrap();
    assert_eq!(l.sources.lock().unwrap().len(), MAX_SOURCES);
}
