//! The unit-record codec: how a [`UnitRecord`] is stored as the value of a
//! ring record, and how a [`UnitResult`] travels between peers.
//!
//! These are wire types, separate from the domain types in
//! [`crate::work`], with `From` conversions between them, so that the
//! domain can change without changing what is stored or sent. The ring
//! record's version is the unit's version; it is not repeated in the value.

use serde::{Deserialize, Serialize};

use crate::ll::Status;
use crate::ring::Record;
use crate::work::{CheckLease, UnitRecord, UnitResult, UnitState};

/// A prime or composite verdict, as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireStatus {
    /// M_p is prime.
    P,
    /// M_p is composite.
    C,
}

/// One finished test as sent on the wire and stored in unit records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireResult {
    /// The exponent p.
    pub exponent: u64,
    /// Prime or composite.
    pub status: WireStatus,
    /// Low 64 bits of the final residue.
    pub res64: u64,
    /// Shift count the test started with.
    pub shift: u64,
    /// Engine name.
    pub engine: String,
    /// Peer id of the key that signed it.
    pub computed_by: String,
    /// When it finished (ms since the UNIX epoch).
    pub finished_ms: u64,
    /// Milliseconds spent crunching.
    pub crunch_ms: u64,
    /// FFT length (0: none). Absent in records from before protocol 4.
    #[serde(default)]
    pub fft_length: u64,
    /// Errors recovered during the run. Absent before protocol 4.
    #[serde(default)]
    pub errors: u32,
    /// The cruncher's public key and signature. Absent before protocol 5:
    /// such a result decodes as unsigned and is refused.
    #[serde(default)]
    pub signature: Option<crate::work::ResultSignature>,
    /// Project mode: the cruncher's membership certificate (a fixed
    /// [`crate::membership::CERT_LEN`]-byte bin). Last and left out when
    /// absent, so open mode sends no byte for it; absent before protocol 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<crate::membership::Certificate>,
}

impl From<&UnitResult> for WireResult {
    fn from(r: &UnitResult) -> Self {
        WireResult {
            exponent: r.exponent,
            status: match r.status {
                Status::Prime => WireStatus::P,
                Status::Composite => WireStatus::C,
            },
            res64: r.res64,
            shift: r.shift,
            engine: r.engine.clone(),
            computed_by: r.computed_by.clone(),
            finished_ms: r.finished_ms,
            crunch_ms: r.crunch_ms,
            fft_length: r.fft_length,
            errors: r.errors,
            signature: r.signature,
            certificate: r.certificate.as_deref().copied(),
        }
    }
}

impl From<WireResult> for UnitResult {
    fn from(r: WireResult) -> Self {
        UnitResult {
            exponent: r.exponent,
            status: match r.status {
                WireStatus::P => Status::Prime,
                WireStatus::C => Status::Composite,
            },
            res64: r.res64,
            shift: r.shift,
            engine: r.engine,
            computed_by: r.computed_by,
            finished_ms: r.finished_ms,
            crunch_ms: r.crunch_ms,
            fft_length: r.fft_length,
            errors: r.errors,
            signature: r.signature,
            certificate: r.certificate.map(Box::new),
        }
    }
}

/// Lifecycle state of a unit on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireUnitState {
    /// Waiting for a worker.
    Submitted,
    /// Under a lease.
    Claimed,
    /// Has a result.
    Done,
}

impl From<UnitState> for WireUnitState {
    fn from(s: UnitState) -> Self {
        match s {
            UnitState::Submitted => WireUnitState::Submitted,
            UnitState::Claimed => WireUnitState::Claimed,
            UnitState::Done => WireUnitState::Done,
        }
    }
}

impl From<WireUnitState> for UnitState {
    fn from(s: WireUnitState) -> Self {
        match s {
            WireUnitState::Submitted => UnitState::Submitted,
            WireUnitState::Claimed => UnitState::Claimed,
            WireUnitState::Done => UnitState::Done,
        }
    }
}

/// A unit's ownership record as stored in the ring (the value of the ring
/// record at `unit_key(p)`; the ring record's version is the unit's version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireUnit {
    /// The exponent p.
    pub exponent: u64,
    /// Lifecycle state.
    pub state: WireUnitState,
    /// Lease holder, when claimed.
    pub claimant: Option<String>,
    /// Lease expiry (ms since the UNIX epoch, the claimant's clock).
    pub lease_expires_ms: u64,
    /// Claims so far.
    pub claims: u32,
    /// Every result reported.
    pub results: Vec<WireResult>,
    /// The double check's lease holder. This and the next two are absent
    /// in records written before protocol 4, which decode with no check.
    #[serde(default)]
    pub check_claimant: Option<String>,
    /// The double check's lease expiry (ms since the UNIX epoch).
    #[serde(default)]
    pub check_expires_ms: u64,
    /// Double-check claims so far.
    #[serde(default)]
    pub check_claims: u32,
    /// The signature over the first test's lease (`work::lease`). This
    /// and the next are absent before protocol 6: such a lease decodes
    /// unsigned, and a held one is refused.
    #[serde(default)]
    pub lease_signature: Option<crate::work::ResultSignature>,
    /// The signature over the double check's lease.
    #[serde(default)]
    pub check_signature: Option<crate::work::ResultSignature>,
    /// Project mode: the project's grant covering the exponent
    /// ([`crate::grant`], a fixed [`crate::grant::GRANT_LEN`]-byte bin).
    /// Absent before protocol 8 and in open mode.
    #[serde(default)]
    pub grant: Option<crate::grant::WorkGrant>,
}

impl From<&UnitRecord> for WireUnit {
    fn from(r: &UnitRecord) -> Self {
        WireUnit {
            exponent: r.exponent,
            state: r.state.into(),
            claimant: r.claimant.clone(),
            lease_expires_ms: r.lease_expires_ms,
            claims: r.claims,
            results: r.results.iter().map(WireResult::from).collect(),
            check_claimant: r.check.claimant.clone(),
            check_expires_ms: r.check.expires_ms,
            check_claims: r.check.claims,
            lease_signature: r.lease_signature,
            check_signature: r.check.signature,
            grant: r.grant,
        }
    }
}

impl WireUnit {
    /// The domain record, at the ring record's `version`.
    pub fn into_record(self, version: u64) -> UnitRecord {
        UnitRecord {
            exponent: self.exponent,
            version,
            state: self.state.into(),
            claimant: self.claimant,
            lease_expires_ms: self.lease_expires_ms,
            claims: self.claims,
            results: self.results.into_iter().map(UnitResult::from).collect(),
            check: CheckLease {
                claimant: self.check_claimant,
                expires_ms: self.check_expires_ms,
                claims: self.check_claims,
                signature: self.check_signature,
            },
            lease_signature: self.lease_signature,
            grant: self.grant,
        }
    }

    /// The value bytes stored in the ring.
    pub fn encode(r: &UnitRecord) -> Vec<u8> {
        rmp_serde::to_vec(&WireUnit::from(r)).expect("unit records always serialise")
    }

    /// Decodes a ring record into a unit record; `None` for values that are
    /// not unit records, and for records outside the engines' limits
    /// ([`UnitRecord::check_limits`]), so such a record is never claimed,
    /// crunched or restored from disk.
    pub fn decode(rec: &Record) -> Option<UnitRecord> {
        let w: WireUnit = rmp_serde::from_slice(&rec.value).ok()?;
        let r = w.into_record(rec.version);
        r.check_limits().ok()?;
        Some(r)
    }
}
