//! What the simulated network carried, by kind: the figures that show
//! where a run's messages (and the results inside them) go.

use std::collections::BTreeMap;

use crate::grid::{PeerAnswer, PeerRequest};
use crate::ring::Body;

/// Messages sent, by kind, and the unit results they carried.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Messages of each kind: `ring:<Body>` for ring messages,
    /// `call:<PeerRequest>` and `answer:<PeerAnswer>` for the grid's calls.
    pub messages: BTreeMap<&'static str, u64>,
    /// Unit results carried in calls and answers (gossip, anti-entropy):
    /// the volume that grows with the table.
    pub results_shipped: u64,
}

impl Traffic {
    pub(super) fn ring<A>(&mut self, body: &Body<A>) {
        *self.messages.entry(ring_kind(body)).or_default() += 1;
    }

    pub(super) fn call(&mut self, msg: &PeerRequest) {
        let (kind, results) = match msg {
            PeerRequest::FindWork { .. } => ("call:FindWork", 0),
            PeerRequest::PushResults(r) => ("call:PushResults", r.len()),
            PeerRequest::Digest(_) => ("call:Digest", 0),
            PeerRequest::Pull(_) => ("call:Pull", 0),
            PeerRequest::Leaf { .. } => ("call:Leaf", 0),
        };
        *self.messages.entry(kind).or_default() += 1;
        self.results_shipped += results as u64;
    }

    pub(super) fn answer(&mut self, answer: &PeerAnswer) {
        let (kind, results) = match answer {
            PeerAnswer::Ok => ("answer:Ok", 0),
            PeerAnswer::Work(_) => ("answer:Work", 0),
            PeerAnswer::Results { results, .. } => ("answer:Results", results.len()),
            PeerAnswer::Rows { .. } => ("answer:Rows", 0),
            PeerAnswer::Leaf(_) => ("answer:Leaf", 0),
        };
        *self.messages.entry(kind).or_default() += 1;
        self.results_shipped += results as u64;
    }

    /// Every message counted.
    pub fn total(&self) -> u64 {
        self.messages.values().sum()
    }
}

fn ring_kind<A>(body: &Body<A>) -> &'static str {
    match body {
        Body::FindSuccessor { .. } => "ring:FindSuccessor",
        Body::Found { .. } => "ring:Found",
        Body::GetState { .. } => "ring:GetState",
        Body::State { .. } => "ring:State",
        Body::Notify => "ring:Notify",
        Body::NewPredecessor { .. } => "ring:NewPredecessor",
        Body::Pull { .. } => "ring:Pull",
        Body::Ping { .. } => "ring:Ping",
        Body::Pong { .. } => "ring:Pong",
        Body::Store { .. } => "ring:Store",
        Body::StoreDone { .. } => "ring:StoreDone",
        Body::Replicate { .. } => "ring:Replicate",
        Body::ReplicateAck { .. } => "ring:ReplicateAck",
        Body::Handover { .. } => "ring:Handover",
        Body::MergeHint { .. } => "ring:MergeHint",
        Body::Leaving { .. } => "ring:Leaving",
        Body::Digest { .. } => "ring:Digest",
        Body::DigestDiff { .. } => "ring:DigestDiff",
    }
}
