//! What the grid accepts from a peer it does not trust: the exponent range
//! of a submission, and the exponents named in unit records and results.
//!
//! Every check here is O(1) or linear in the record, and comes before any
//! work whose cost grows with the numbers named (sieving, allocating M_p),
//! so a hostile message costs the receiver nothing but its decoding.

use super::{UnitRecord, UnitResult};
use crate::ll::MAX_EXPONENT;
use crate::primes::MAX_SIEVE_WIDTH;

/// The widest range one submission may name, [`MAX_SIEVE_WIDTH`]: sieving
/// it takes about 1.2 s of one core (measured for 2..=10^8), so it belongs
/// on a blocking thread, not an async one.
pub const MAX_SUBMIT_WIDTH: u64 = MAX_SIEVE_WIDTH;

/// Longest engine name or `computed_by` a result may carry, in bytes: a
/// peer's address or peer id fits many times over, and a table of a million
/// rows stays a size that pages well.
pub const MAX_NAME_LEN: usize = 128;

/// Why a submission, unit record or result is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The range's upper end is below its lower end.
    #[error("empty range {from}-{to}")]
    EmptyRange {
        /// Lower end.
        from: u64,
        /// Upper end.
        to: u64,
    },
    /// The range reaches above [`MAX_EXPONENT`].
    #[error("range {from}-{to} reaches above {max}, the largest exponent this build can test")]
    AboveMaxExponent {
        /// Lower end.
        from: u64,
        /// Upper end.
        to: u64,
        /// [`MAX_EXPONENT`].
        max: u64,
    },
    /// The range holds more than [`MAX_SUBMIT_WIDTH`] numbers.
    #[error("range {from}-{to} is too wide: at most {max} exponents at once")]
    TooWide {
        /// Lower end.
        from: u64,
        /// Upper end.
        to: u64,
        /// [`MAX_SUBMIT_WIDTH`].
        max: u64,
    },
    /// A record or result names an exponent no engine here can test.
    #[error("exponent {p} is outside 2..={max}")]
    Exponent {
        /// The exponent named.
        p: u64,
        /// [`MAX_EXPONENT`].
        max: u64,
    },
    /// A record carries a result for another exponent.
    #[error("the record of exponent {record} carries a result for exponent {result}")]
    ForeignResult {
        /// The record's exponent.
        record: u64,
        /// The result's exponent.
        result: u64,
    },
    /// A result names its engine or its cruncher at more than
    /// [`MAX_NAME_LEN`] bytes.
    #[error("a result's {field} is {len} bytes long, more than {MAX_NAME_LEN}")]
    LongName {
        /// `engine` or `computed_by`.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A result's shift count is not below its exponent.
    #[error("shift count {shift} of a result for exponent {p} is not below it")]
    BadShift {
        /// The exponent.
        p: u64,
        /// The shift count.
        shift: u64,
    },
}

/// Checks a submitted range `from..=to` before it is sieved: non-empty,
/// at most [`MAX_SUBMIT_WIDTH`] numbers, and nothing above [`MAX_EXPONENT`].
pub fn check_submission(from: u64, to: u64) -> Result<(), LimitError> {
    if to < from {
        return Err(LimitError::EmptyRange { from, to });
    }
    if to > MAX_EXPONENT {
        return Err(LimitError::AboveMaxExponent {
            from,
            to,
            max: MAX_EXPONENT,
        });
    }
    if to - from >= MAX_SUBMIT_WIDTH {
        return Err(LimitError::TooWide {
            from,
            to,
            max: MAX_SUBMIT_WIDTH,
        });
    }
    Ok(())
}

fn check_exponent_range(p: u64) -> Result<(), LimitError> {
    if (2..=MAX_EXPONENT).contains(&p) {
        Ok(())
    } else {
        Err(LimitError::Exponent {
            p,
            max: MAX_EXPONENT,
        })
    }
}

impl UnitResult {
    /// Checks the result's exponent is one this build tests, its shift is
    /// below it and its names are at most [`MAX_NAME_LEN`] bytes; no
    /// primality test, so it stays O(1).
    pub fn check_limits(&self) -> Result<(), LimitError> {
        check_exponent_range(self.exponent)?;
        for (field, text) in [("engine", &self.engine), ("computed_by", &self.computed_by)] {
            if text.len() > MAX_NAME_LEN {
                return Err(LimitError::LongName {
                    field,
                    len: text.len(),
                });
            }
        }
        if self.exponent > 2 && self.shift >= self.exponent {
            return Err(LimitError::BadShift {
                p: self.exponent,
                shift: self.shift,
            });
        }
        Ok(())
    }
}

impl UnitRecord {
    /// Checks a decoded record before it is stored or claimed: its exponent
    /// is one this build tests (a claimant would otherwise try to allocate
    /// M_p), and every result is for that exponent and within limits.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        check_exponent_range(self.exponent)?;
        for r in &self.results {
            if r.exponent != self.exponent {
                return Err(LimitError::ForeignResult {
                    record: self.exponent,
                    result: r.exponent,
                });
            }
            r.check_limits()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ll::Status;

    #[test]
    fn submissions_within_the_limits_pass() {
        assert_eq!(check_submission(2, 10_000), Ok(()));
        assert_eq!(check_submission(7, 7), Ok(()));
        assert_eq!(check_submission(1, MAX_SUBMIT_WIDTH), Ok(()));
        assert_eq!(check_submission(MAX_EXPONENT - 1000, MAX_EXPONENT), Ok(()));
    }

    #[test]
    fn hostile_submissions_are_refused() {
        assert_eq!(
            check_submission(10, 9),
            Err(LimitError::EmptyRange { from: 10, to: 9 })
        );
        for (from, to) in [
            (1_000_000_000_000_000_000, 1_000_000_000_000_000_100),
            (u64::MAX - 100, u64::MAX),
            (0, u64::MAX),
            (MAX_EXPONENT, MAX_EXPONENT + 1),
        ] {
            let e = check_submission(from, to).unwrap_err();
            assert!(matches!(e, LimitError::AboveMaxExponent { .. }), "{e:?}");
            assert!(e.to_string().contains(&MAX_EXPONENT.to_string()), "{e}");
        }
        assert_eq!(
            check_submission(0, MAX_SUBMIT_WIDTH),
            Err(LimitError::TooWide {
                from: 0,
                to: MAX_SUBMIT_WIDTH,
                max: MAX_SUBMIT_WIDTH
            })
        );
    }

    fn result(p: u64, shift: u64) -> UnitResult {
        UnitResult {
            exponent: p,
            status: Status::Composite,
            res64: 1,
            shift,
            engine: "fft".into(),
            computed_by: "a".into(),
            finished_ms: 1,
            crunch_ms: 1,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        }
    }

    #[test]
    fn records_naming_untestable_exponents_are_refused() {
        let mut ok = UnitRecord::new(4423);
        ok.results.push(result(4423, 17));
        assert_eq!(ok.check_limits(), Ok(()));
        for p in [
            0,
            1,
            MAX_EXPONENT + 1,
            1_000_000_000_000_000_003,
            u64::MAX - 58,
        ] {
            assert_eq!(
                UnitRecord::new(p).check_limits(),
                Err(LimitError::Exponent {
                    p,
                    max: MAX_EXPONENT
                })
            );
            assert!(result(p, 0).check_limits().is_err());
        }
        let mut foreign = ok.clone();
        foreign.results.push(result(4253, 0));
        assert_eq!(
            foreign.check_limits(),
            Err(LimitError::ForeignResult {
                record: 4423,
                result: 4253
            })
        );
        let mut long = result(4423, 1);
        long.computed_by = "x".repeat(MAX_NAME_LEN);
        assert_eq!(long.check_limits(), Ok(()));
        long.computed_by.push('x');
        assert_eq!(
            long.check_limits(),
            Err(LimitError::LongName {
                field: "computed_by",
                len: MAX_NAME_LEN + 1
            })
        );
        long.computed_by.clear();
        long.engine = "e".repeat(9 << 20);
        assert!(matches!(
            long.check_limits(),
            Err(LimitError::LongName {
                field: "engine",
                ..
            })
        ));
        let mut shifted = ok.clone();
        shifted.results.push(result(4423, 4423));
        assert!(matches!(
            shifted.check_limits(),
            Err(LimitError::BadShift { .. })
        ));
    }
}
