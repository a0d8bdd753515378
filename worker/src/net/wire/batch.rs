//! A ring batch's decoding, bounded in messages before they are built.

use serde::{Deserialize, Serialize};

use super::{RING_BATCH_MAX, RingMessage};

/// The messages of one [`Frame::Ring`](super::Frame::Ring), at most [`RING_BATCH_MAX`]. A
/// longer batch fails to decode at its `RING_BATCH_MAX + 1`-th message,
/// before that message is built: a frame of many tiny messages cannot make
/// the receiver build hundreds of thousands of them only to refuse them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct RingBatch(pub Vec<RingMessage>);

impl<'de> Deserialize<'de> for RingBatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded;
        impl<'de> serde::de::Visitor<'de> for Bounded {
            type Value = RingBatch;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "at most {RING_BATCH_MAX} ring messages")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<RingBatch, S::Error> {
                let hint = seq.size_hint().unwrap_or(0).min(RING_BATCH_MAX);
                let mut v = Vec::with_capacity(hint);
                while let Some(m) = seq.next_element::<RingMessage>()? {
                    v.push(m);
                    if v.len() == RING_BATCH_MAX {
                        // One more element, even a malformed one, is too many.
                        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                            return Err(serde::de::Error::custom(format!(
                                "a ring batch of more than {RING_BATCH_MAX} messages"
                            )));
                        }
                        break;
                    }
                }
                Ok(RingBatch(v))
            }
        }
        d.deserialize_seq(Bounded)
    }
}
