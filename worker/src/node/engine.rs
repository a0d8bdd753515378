//! The engine a unit runs on, kept concrete when it is the FFT engine so
//! that the errors it recovered from reach the result (GIMPS's
//! `error-code`): the `LlEngine` trait does not report them, the FFT
//! engine's own counters do.

use mersenne_common::ll::{self, Checkpoint, EngineKind, FftEngine, LlEngine, LlError};

/// A running test.
pub(super) enum Running {
    /// The FFT engine, whose counters we read at the end.
    Fft(Box<FftEngine>),
    /// Any other engine (the reference engine recovers from nothing).
    Other(Box<dyn LlEngine>),
}

impl Running {
    /// A fresh test of M_p with `shift` on `kind` (resolved for p).
    pub fn start(kind: EngineKind, p: u64, shift: u64) -> Result<Running, LlError> {
        match kind.resolve(p) {
            EngineKind::Fft => Ok(Running::Fft(Box::new(FftEngine::new(p, shift)?))),
            k => Ok(Running::Other(ll::new_engine(k, p, shift)?)),
        }
    }

    /// A test resumed from checkpoint `c` on the engine `Auto` picks.
    pub fn resume(c: &Checkpoint) -> Result<Running, LlError> {
        match EngineKind::Auto.resolve(c.exponent) {
            EngineKind::Fft => Ok(Running::Fft(Box::new(FftEngine::resume(c)?))),
            k => Ok(Running::Other(ll::resume_engine(k, c)?)),
        }
    }

    /// The engine.
    pub fn engine(&mut self) -> &mut dyn LlEngine {
        match self {
            Running::Fft(e) => e.as_mut(),
            Running::Other(e) => e.as_mut(),
        }
    }

    /// Errors recovered from so far: round-off retries (each moved to a
    /// longer FFT) and failed Jacobi checks (each rolled back). Counted
    /// since this process started the engine: a resumed test does not know
    /// the errors of the run before its checkpoint.
    pub fn errors(&self) -> u32 {
        match self {
            Running::Fft(e) => {
                let s = e.stats();
                u32::try_from(s.roundoff_retries + s.jacobi_failures).unwrap_or(u32::MAX)
            }
            Running::Other(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_runs_the_engine_it_names_and_a_clean_run_counts_no_error() {
        let mut f = Running::start(EngineKind::Auto, 4423, 17).unwrap();
        assert_eq!(f.engine().name(), "fft");
        let mut r = Running::start(EngineKind::Reference, 4423, 17).unwrap();
        assert_eq!(r.engine().name(), "reference");
        for run in [&mut f, &mut r] {
            let e = run.engine();
            while !e.is_done() {
                e.advance(1000).unwrap();
            }
            assert_eq!(e.result().unwrap().status, ll::Status::Prime);
        }
        assert_eq!((f.errors(), r.errors()), (0, 0));
    }

    #[test]
    fn a_round_off_retry_is_counted() {
        use mersenne_common::ll::FftOptions;
        // A round-off limit no iteration meets makes the engine retry at a
        // longer length until it runs out: the first retry is counted.
        let e = FftEngine::with_options(
            9689,
            5,
            FftOptions {
                roundoff_limit: 1e-30,
                ..FftOptions::default()
            },
        )
        .unwrap();
        let mut run = Running::Fft(Box::new(e));
        let _ = run.engine().advance(50);
        assert!(run.errors() >= 1, "errors {}", run.errors());
    }
}
