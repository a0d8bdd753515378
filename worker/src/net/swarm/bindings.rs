//! Which key answers at which address.

use std::collections::HashMap;
use std::sync::PoisonError;

use libp2p::PeerId;

use super::SwarmHandle;

/// Addresses remembered per map before the map is cleared (bounds memory
/// whatever peers claim).
const BINDINGS_MAX: usize = 4096;

/// Which key answers at which address: required by the user (a
/// `/p2p/…` in `--join`), proven by our own dials, or claimed by ring
/// messages from a proven key. A proof overrides a claim; a claim is
/// refused where a requirement or a proof names another key.
#[derive(Default)]
pub(super) struct Bindings {
    pub(super) pinned: HashMap<String, PeerId>,
    pub(super) dialed: HashMap<String, PeerId>,
    pub(super) claimed: HashMap<String, PeerId>,
}

impl Bindings {
    pub(super) fn expected(&self, addr: &str) -> Option<PeerId> {
        self.pinned
            .get(addr)
            .or_else(|| self.dialed.get(addr))
            .or_else(|| self.claimed.get(addr))
            .copied()
    }

    pub(super) fn insert(map: &mut HashMap<String, PeerId>, addr: &str, peer: PeerId) {
        if map.len() >= BINDINGS_MAX && !map.contains_key(addr) {
            map.clear();
        }
        map.insert(addr.to_string(), peer);
    }
}

impl SwarmHandle {
    /// Requires the key `peer` at `addr` from now on (`--join …/p2p/ID`).
    pub fn pin(&self, addr: &str, peer: PeerId) {
        let mut b = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        Bindings::insert(&mut b.pinned, addr, peer);
    }

    /// Records that a ring message from the proven key `peer` names `addr`
    /// as its own, so that answers for `addr` go to that key. Refused when
    /// another key is required, proven or claimed at `addr`.
    pub fn claim(&self, addr: &str, peer: PeerId) -> Result<(), PeerId> {
        let mut b = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        // The first key to claim an address keeps it until a dial there
        // meets another key (a peer restarted with a new key): a later
        // claim cannot redirect what is sent to a peer already known.
        match b.expected(addr) {
            Some(p) if p != peer => Err(p),
            Some(_) => Ok(()),
            None => {
                Bindings::insert(&mut b.claimed, addr, peer);
                Ok(())
            }
        }
    }
}
