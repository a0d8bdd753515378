//! Prime95's `worktodo.txt`, read: which lines the grid can run (LL tests
//! from `Test=` and `DoubleCheck=`), and why it cannot run the others.
//!
//! The formats are Prime95's (`undoc.txt`, `readme.txt`):
//! `Test=[AID,]p,how_far_factored,has_been_pminus1ed`,
//! `DoubleCheck=[AID,]p,how_far_factored,has_been_pminus1ed` and
//! `PRP=[AID,]k,b,n,c[,how_far_factored,tests_saved[,base,residue_type]]`.
//! An assignment id is 32 hex digits; `N/A` (or nothing) means none.

use mersenne_common::ll::LlError;
use mersenne_common::primes::is_prime;
use mersenne_common::work::{LimitError, check_submission};

/// A line the grid can run: one LL test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Line number in the file (from 1).
    pub line: usize,
    /// `Test` or `DoubleCheck`.
    pub kind: &'static str,
    /// The exponent p of M_p.
    pub exponent: u64,
    /// PrimeNet's assignment id, when the line had one.
    pub aid: Option<String>,
}

/// A line the grid does not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Line number in the file (from 1).
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// Why it is not run.
    pub reason: String,
}

/// A parsed file: what to submit and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Worktodo {
    /// LL tests to submit, in file order.
    pub runnable: Vec<Assignment>,
    /// Every other non-blank, non-comment line.
    pub skipped: Vec<Skipped>,
}

fn is_aid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits off a leading assignment id: `Some(aid)`, `None` for `N/A` or
/// none given, and the remaining fields.
fn split_aid(fields: Vec<&str>) -> (Option<String>, Vec<&str>) {
    match fields.first() {
        Some(f) if is_aid(f) => (Some(f.to_ascii_uppercase()), fields[1..].to_vec()),
        Some(f) if f.eq_ignore_ascii_case("N/A") => (None, fields[1..].to_vec()),
        _ => (None, fields),
    }
}

/// Why an LL line cannot be tested; its text becomes [`Skipped::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadLlLine {
    /// Nothing after `Test=` (or the assignment id).
    #[error("no exponent")]
    NoExponent,
    /// The exponent field is not a whole number.
    #[error("{0:?} is not an exponent")]
    NotAnExponent(String),
    /// More fields follow the exponent than Prime95's form has; the count
    /// is of the fields after it.
    #[error(
        "{0} fields after the exponent; Prime95's form has at most 2 (how_far_factored, has_been_pminus1ed)"
    )]
    TooManyFields(usize),
    /// A field after the exponent is not a whole number.
    #[error("{0:?} is not a number")]
    NotANumber(String),
    /// The exponent is outside what the grid accepts.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The exponent cannot be tested at all.
    #[error(transparent)]
    Ll(#[from] LlError),
    /// The exponent is composite, so no test is due.
    #[error("{0} is composite, so M{0} is composite and no test is due")]
    Composite(u64),
}

/// The exponent of an LL line, or why it cannot be tested.
fn ll_exponent(fields: &[&str]) -> Result<u64, BadLlLine> {
    let p_field = fields.first().ok_or(BadLlLine::NoExponent)?;
    let p: u64 = p_field
        .parse()
        .map_err(|_| BadLlLine::NotAnExponent(p_field.to_string()))?;
    if fields.len() > 3 {
        return Err(BadLlLine::TooManyFields(fields.len() - 1));
    }
    for f in &fields[1..] {
        if f.parse::<u64>().is_err() {
            return Err(BadLlLine::NotANumber(f.to_string()));
        }
    }
    check_submission(p, p)?;
    if p < 2 {
        return Err(LlError::ExponentTooSmall(p).into());
    }
    if !is_prime(p) {
        return Err(BadLlLine::Composite(p));
    }
    Ok(p)
}

/// Why a work type other than LL is not run here.
fn not_run(kind: &str) -> Option<&'static str> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "prp" | "prpdc" => {
            "PRP tests are not run by this grid (it runs Lucas-Lehmer tests only); \
             run it in Prime95, gpuowl or PRPLL"
        }
        "factor" => "trial factoring is not run by this grid (it runs Lucas-Lehmer tests only)",
        "pfactor" | "pminus1" => {
            "P-1 factoring is not run by this grid (it runs Lucas-Lehmer tests only)"
        }
        "ecm" | "ecm2" => "ECM is not run by this grid (it runs Lucas-Lehmer tests only)",
        "cert" => "PRP certificates are not run by this grid (it runs Lucas-Lehmer tests only)",
        "advancedtest" => "AdvancedTest is not run by this grid; use `worker ll P`",
        _ => return None,
    })
}

/// Reads a `worktodo.txt`. Blank lines, `;`/`#`/`//` comments and
/// `[Worker #n]` section headers are neither run nor reported.
pub fn parse(text: &str) -> Worktodo {
    let mut w = Worktodo::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty()
            || t.starts_with(';')
            || t.starts_with('#')
            || t.starts_with("//")
            || (t.starts_with('[') && t.ends_with(']'))
        {
            continue;
        }
        let skip = |reason: String| Skipped {
            line,
            text: t.to_string(),
            reason,
        };
        let Some((kind, rest)) = t.split_once('=') else {
            w.skipped
                .push(skip("not a worktodo line (expected TYPE=fields)".into()));
            continue;
        };
        let kind = kind.trim();
        let fields: Vec<&str> = rest.split(',').map(str::trim).collect();
        let (aid, fields) = split_aid(fields);
        let ll_kind = if kind.eq_ignore_ascii_case("Test") {
            "Test"
        } else if kind.eq_ignore_ascii_case("DoubleCheck") {
            "DoubleCheck"
        } else {
            let reason = not_run(kind)
                .map(str::to_string)
                .unwrap_or_else(|| format!("unknown work type {kind:?}"));
            w.skipped.push(skip(reason));
            continue;
        };
        match ll_exponent(&fields) {
            Ok(exponent) => w.runnable.push(Assignment {
                line,
                kind: ll_kind,
                exponent,
                aid,
            }),
            Err(reason) => w.skipped.push(skip(reason.to_string())),
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const AID: &str = "0123456789ABCDEF0123456789abcdef";

    #[test]
    fn ll_lines_with_and_without_assignment_ids() {
        let w = parse(&format!(
            "Test={AID},86243,68,1\nDoubleCheck=N/A,44497,66,0\nTest=4423,60,1\nDoubleCheck=21701\n"
        ));
        assert!(w.skipped.is_empty(), "{:?}", w.skipped);
        let got: Vec<(&str, u64, Option<String>)> = w
            .runnable
            .iter()
            .map(|a| (a.kind, a.exponent, a.aid.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Test", 86243, Some(AID.to_ascii_uppercase())),
                ("DoubleCheck", 44497, None),
                ("Test", 4423, None),
                ("DoubleCheck", 21701, None),
            ]
        );
        assert_eq!(w.runnable[2].line, 3);
    }

    #[test]
    fn other_lines_are_reported_with_their_reason() {
        let w = parse(&format!(
            "[Worker #1]\n; a comment\n\nPRP={AID},1,2,86243,-1,75,0\nPRP=1,2,4423,-1\n\
             Factor={AID},1277,1,60\nPminus1=1,2,1277,-1,1000,100000\nTest=4321,60,1\n\
             Test=143000017,60,1\nTest=x,1,1\nTest={AID},4423,60,1,9\nhello\nFoo=1\n"
        ));
        assert!(w.runnable.is_empty(), "{:?}", w.runnable);
        let lines: Vec<usize> = w.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        let reason = |l: usize| &w.skipped.iter().find(|s| s.line == l).unwrap().reason;
        assert!(reason(4).contains("PRP tests are not run"), "{}", reason(4));
        assert!(reason(5).contains("PRP tests are not run"));
        assert!(reason(6).contains("trial factoring"));
        assert!(reason(7).contains("P-1"));
        // 4321 = 29 * 149.
        assert!(reason(8).contains("composite"), "{}", reason(8));
        assert!(reason(9).contains("143000000"), "{}", reason(9));
        assert!(reason(10).contains("not an exponent"));
        assert!(reason(11).contains("at most 2"), "{}", reason(11));
        assert!(reason(12).contains("TYPE=fields"));
        assert!(reason(13).contains("unknown work type"));
    }
}
