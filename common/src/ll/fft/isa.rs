//! Which instruction set our own FFT runs with: the best the CPU has, or one
//! forced by [`super::FftOptions::isa`] or the `MERSENNE_FFT_ISA`
//! environment variable.
//!
//! Forcing exists for two readers. Tests run the whole engine on every set
//! the CPU has (an AVX-512 machine would otherwise never run the AVX2 and
//! baseline kernels through a full test), and `worker bench` measures what a
//! volunteer without AVX-512 would get, on a machine that has it.
//!
//! [`Isa`] is only a request. The kernels run on [`super::dispatch::Isa`], which
//! is constructed only after the CPU was checked, so forcing a set the CPU
//! lacks is an error ([`IsaError::Unavailable`]), never an illegal
//! instruction.

use super::dispatch;
use std::fmt;
use std::str::FromStr;

/// The environment variable that forces an instruction set when
/// [`super::FftOptions::isa`] is `None` (`avx512`, `avx2` or `baseline`).
pub const ISA_ENV: &str = "MERSENNE_FFT_ISA";

/// An instruction set our FFT kernels are compiled for. Every length on our
/// own FFT (k·2^n with k ∈ {1, 3, 5, 7}) runs with it; the rustfft
/// fallback, which the engine leaves only for lengths our FFT cannot do,
/// picks its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F/VL/DQ with FMA, 8 doubles per vector, hand-written kernels.
    Avx512,
    /// AVX2 with FMA, 4 doubles per vector, hand-written kernels.
    Avx2,
    /// Plain x86-64 (SSE2) or whatever else the build targets, no FMA.
    Baseline,
}

/// Why an instruction set cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    /// The name is not one of `avx512`, `avx2`, `baseline`.
    #[error("unknown instruction set {0:?} (expected avx512, avx2 or baseline)")]
    Unknown(String),
    /// This CPU (or this build's target) does not have the set.
    #[error("this CPU lacks the {0} instruction set")]
    Unavailable(Isa),
}

impl Isa {
    /// Every set, best first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Baseline];

    /// The lower-case name used by `MERSENNE_FFT_ISA` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Baseline => "baseline",
        }
    }

    /// The best set this CPU has.
    pub fn best() -> Isa {
        Self::from_kernels(dispatch::Isa::detect())
    }

    /// Every set this CPU has, best first.
    pub fn available() -> Vec<Isa> {
        dispatch::Isa::supported()
            .into_iter()
            .map(Self::from_kernels)
            .collect()
    }

    /// Whether this CPU has the set.
    pub fn is_available(self) -> bool {
        self.kernels().is_some()
    }

    /// The checked set the kernels dispatch on, if the CPU has it.
    pub(super) fn kernels(self) -> Option<dispatch::Isa> {
        dispatch::Isa::supported()
            .into_iter()
            .find(|&k| Self::from_kernels(k) == self)
    }

    pub(super) fn from_kernels(k: dispatch::Isa) -> Isa {
        match k {
            #[cfg(target_arch = "x86_64")]
            dispatch::Isa::Avx512 => Isa::Avx512,
            #[cfg(target_arch = "x86_64")]
            dispatch::Isa::Avx2 => Isa::Avx2,
            dispatch::Isa::Baseline => Isa::Baseline,
        }
    }

    /// The set an environment value asks for: `None` (unset or empty) means
    /// no preference.
    pub fn from_env_value(value: Option<&str>) -> Result<Option<Isa>, IsaError> {
        match value.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some),
        }
    }

    /// The set `MERSENNE_FFT_ISA` asks for, if any.
    pub fn from_env() -> Result<Option<Isa>, IsaError> {
        Self::from_env_value(std::env::var(ISA_ENV).ok().as_deref())
    }

    /// The checked kernels for a request (`None`: the environment's, else
    /// the best the CPU has).
    pub(super) fn resolve(request: Option<Isa>) -> Result<dispatch::Isa, IsaError> {
        match request.map_or_else(Self::from_env, |i| Ok(Some(i)))? {
            None => Ok(dispatch::Isa::detect()),
            Some(isa) => isa.kernels().ok_or(IsaError::Unavailable(isa)),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = IsaError;
    fn from_str(s: &str) -> Result<Self, IsaError> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|i| i.name() == lower.replace(['-', '_'], ""))
            .ok_or_else(|| IsaError::Unknown(s.to_string()))
    }
}

/// Tests that need an instruction set this CPU lacks call this and return:
/// it writes the skip to the real stderr, which the test harness does not
/// capture (so it shows in CI logs even when the test passes), and counts
/// it. A skip must never pass silently.
#[cfg(test)]
pub(super) fn report_skip(test: &str, missing: Isa) {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SKIPS: AtomicUsize = AtomicUsize::new(0);
    let k = SKIPS.fetch_add(1, Ordering::Relaxed) + 1;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED ({k} so far): {test} needs {missing}, which this CPU lacks"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
            assert_eq!(isa.to_string(), isa.name());
        }
        assert_eq!("AVX-512".parse::<Isa>(), Ok(Isa::Avx512));
        assert_eq!("sse9".parse::<Isa>(), Err(IsaError::Unknown("sse9".into())));
        assert_eq!(Isa::from_env_value(None), Ok(None));
        assert_eq!(Isa::from_env_value(Some(" ")), Ok(None));
        assert_eq!(Isa::from_env_value(Some("avx2")), Ok(Some(Isa::Avx2)));
        assert!(Isa::from_env_value(Some("neon")).is_err());
    }

    #[test]
    fn available_sets_resolve_and_missing_ones_are_refused() {
        let avail = Isa::available();
        assert_eq!(avail[0], Isa::best());
        assert_eq!(*avail.last().unwrap(), Isa::Baseline);
        for isa in Isa::ALL {
            match Isa::resolve(Some(isa)) {
                Ok(k) => {
                    assert!(avail.contains(&isa));
                    assert_eq!(Isa::from_kernels(k), isa);
                }
                Err(e) => {
                    assert!(!avail.contains(&isa));
                    assert_eq!(e, IsaError::Unavailable(isa));
                }
            }
        }
    }
}
