//! Who may send what: the admission rules the server applies to every
//! frame before it reaches the state machine (project membership, grants,
//! this machine only for pause and resume), and how refusals are counted
//! without flooding the log.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use super::Shell;
use crate::net::Request;
use crate::net::swarm::Standing;

/// Counts one refusal in `counter`; the count so far when this refusal is
/// the first of a thousand, the one to log. A stranger's stream of bad
/// frames must not become a flood of log lines.
pub(super) fn tally(counter: &AtomicU64) -> Option<u64> {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    (n % 1000 == 1).then_some(n)
}

/// Whether a sender of this standing may send ring messages: in project
/// mode, members only.
pub(super) fn may_ring(standing: Standing) -> bool {
    matches!(standing, Standing::Open | Standing::Member)
}

/// Whether a connection from `ip` is the operator's own: pause and resume
/// stop a volunteer's crunching, so, as BOINC takes its GUI's commands from
/// the local host only by default, a key from elsewhere (any key at all in
/// open mode) cannot stop the grid peer by peer.
pub(super) fn from_this_machine(ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| ip.is_loopback())
}

/// Whether a sender of this standing may make `req`. In project mode,
/// work enters only under the project key's authority: from the project
/// key itself (`coordinator`'s own seeding happens inside it), or as a
/// submission carrying a grant, from anyone (`coordinator grant`, then
/// `worker submit --grant`; the grid node verifies that the grant is the
/// project's and covers the range before anything is sieved). Grid
/// requests come from members, and anyone may read (status and result
/// tables); pause and resume are further held to this machine
/// ([`from_this_machine`]).
pub(super) fn may_request(standing: Standing, req: &Request) -> bool {
    match req {
        Request::Submit { grant: Some(_), .. } => true,
        Request::Submit { .. } | Request::Assign { .. } => {
            matches!(standing, Standing::Open | Standing::ProjectKey)
        }
        Request::FindWork { .. }
        | Request::PushResults { .. }
        | Request::Digest { .. }
        | Request::Pull { .. }
        | Request::LeafPoll { .. }
        | Request::LeafResults { .. } => matches!(standing, Standing::Open | Standing::Member),
        Request::Status
        | Request::Results { .. }
        | Request::ResultsPage { .. }
        | Request::Units { .. }
        | Request::Pause
        | Request::Resume => true,
    }
}

/// Counts a refused frame; one log line per thousand.
pub(super) fn refuse(s: &Shell, peer: &libp2p::PeerId, what: &str) {
    if let Some(n) = tally(&s.counters.not_member) {
        warn!(%peer, refused = n, "refused {what}");
    }
}
