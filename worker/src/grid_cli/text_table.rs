//! The text table of `worker results`, written as its rows come.
//!
//! A table laid out whole (comfy-table's way) must hold every row to
//! measure its columns: 3.0 GB and over two minutes at 1,000,000 rows. Here
//! the first [`FIT_ROWS`] rows are held back; a table that ends within them
//! is laid out to its content, byte for byte as comfy-table's `ASCII_FULL`
//! did, and a longer one gets column widths fixed from those rows and the
//! widest each column can honestly be, then every further row is written as
//! it arrives. Memory is bounded by [`FIT_ROWS`] whatever the row count.

use std::io::{self, Write};

use unicode_width::UnicodeWidthChar;

use mersenne_common::ll::MAX_EXPONENT;
use mersenne_common::ll::res64_hex;
use mersenne_common::work::MAX_NAME_LEN;

use super::results::Row;

/// Rows held back to fit the columns to. A table of at most this many rows
/// looks as it always did; past it, columns have fixed widths.
pub(crate) const FIT_ROWS: usize = 1000;

/// Columns of the table.
const COLUMNS: usize = 7;

/// The header line.
const HEADER: [&str; COLUMNS] = [
    "exponent",
    "status",
    "res64",
    "computed by",
    "agree",
    "verified",
    "when (UTC)",
];

/// Characters in a peer id (`12D3KooW…`: base58 of a 38-byte multihash of
/// an ed25519 key), the form `computed by` takes in every signed result.
pub(crate) const PEER_ID_CHARS: usize = 52;

/// The widest each column's honest content is, used once the table has
/// outgrown [`FIT_ROWS`] and can no longer be measured: the digits of the
/// largest exponent this build tests, a one-letter status, 16 hex digits, a
/// peer id, `agree/results` up to 999/999, the longest verification state,
/// a `YYYY-MM-DD hh:mm:ss` time.
const KNOWN_WIDTHS: [usize; COLUMNS] = [
    digits(MAX_EXPONENT),
    1,
    16,
    PEER_ID_CHARS,
    7,
    "unverified".len(),
    19,
];

/// The column that holds text a peer chose (any other cell is a number, a
/// hex residue, a state name or a time we format).
const PEER_TEXT: usize = 3;

/// Decimal digits of `n`.
const fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Writes the text table of `worker results` row by row: [`push`] each row,
/// then [`finish`] for the closing border and the row count.
///
/// [`push`]: TableWriter::push
/// [`finish`]: TableWriter::finish
pub(crate) struct TableWriter<W: Write> {
    out: W,
    /// Rows held back while the columns are still being measured; emptied
    /// for good when the widths are fixed.
    held: Vec<[String; COLUMNS]>,
    /// Column widths once fixed (the header is written then).
    widths: Option<[usize; COLUMNS]>,
    /// Rows taken so far.
    rows: u64,
    /// Rows written so far (each but the first after a divider).
    written: u64,
}

impl<W: Write> TableWriter<W> {
    /// A table written to `out`.
    pub(crate) fn new(out: W) -> Self {
        TableWriter {
            out,
            held: Vec::new(),
            widths: None,
            rows: 0,
            written: 0,
        }
    }

    /// Takes one row: held while fewer than [`FIT_ROWS`] have come, then
    /// written at once (the held ones first).
    pub(crate) fn push(&mut self, row: &Row) -> io::Result<()> {
        let cells = cells(row);
        self.rows += 1;
        match self.widths {
            Some(widths) => self.write_row(&cells, &widths),
            None if self.held.len() < FIT_ROWS => {
                self.held.push(cells);
                Ok(())
            }
            None => {
                let mut widths = measure(&self.held);
                for (w, known) in widths.iter_mut().zip(KNOWN_WIDTHS) {
                    *w = (*w).max(known);
                }
                self.start(widths)?;
                self.write_row(&cells, &widths)
            }
        }
    }

    /// Rows held back, not yet written (at most [`FIT_ROWS`]).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Writes what has been buffered so far to the terminal or pipe, so a
    /// long walk shows its rows page by page.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Ends the table: the held rows if it never outgrew them (fitted to
    /// their content), the bottom border and the row count.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let widths = match self.widths {
            Some(w) => w,
            None => {
                let widths = measure(&self.held);
                self.start(widths)?;
                widths
            }
        };
        writeln!(self.out, "{}", border(&widths, '+', '-', '+'))?;
        writeln!(self.out, "{} exponents", self.rows)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Fixes the widths, writes the header and the held rows.
    fn start(&mut self, widths: [usize; COLUMNS]) -> io::Result<()> {
        writeln!(self.out, "{}", border(&widths, '+', '-', '+'))?;
        write_cells(&mut self.out, &HEADER.map(String::from), &widths)?;
        writeln!(self.out, "{}", border(&widths, '+', '=', '='))?;
        self.widths = Some(widths);
        for cells in std::mem::take(&mut self.held) {
            self.write_row(&cells, &widths)?;
        }
        Ok(())
    }

    /// One row, after a divider unless it is the first.
    fn write_row(
        &mut self,
        cells: &[String; COLUMNS],
        widths: &[usize; COLUMNS],
    ) -> io::Result<()> {
        if self.written > 0 {
            writeln!(self.out, "{}", border(widths, '|', '-', '+'))?;
        }
        self.written += 1;
        write_cells(&mut self.out, cells, widths)
    }
}

/// The cells of one row. The peer's own text is made safe for a terminal
/// and cut to what any honest peer can hold ([`MAX_NAME_LEN`]).
fn cells(r: &Row) -> [String; COLUMNS] {
    [
        r.best.exponent.to_string(),
        r.best.status.code().to_string(),
        res64_hex(r.best.res64),
        fit(&printable(&r.best.computed_by), MAX_NAME_LEN),
        format!("{}/{}", r.agree, r.total),
        r.verification.name().to_string(),
        super::results::when(r.best.finished_ms),
    ]
}

/// `text` with every control character (escape sequences, newlines that
/// would break the row) shown as U+FFFD: a peer's name is not ours to let
/// steer the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Display width of `text` in terminal columns.
fn width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` cut to `max` columns, its last one `…` when anything was cut.
fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Each column's width: its header or its widest cell.
fn measure(rows: &[[String; COLUMNS]]) -> [usize; COLUMNS] {
    let mut widths = HEADER.map(width);
    for cells in rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(width(c));
        }
    }
    widths
}

/// A border line: `edge` at both ends, `fill` over each column and its
/// padding, `cross` between columns.
fn border(widths: &[usize; COLUMNS], edge: char, fill: char, cross: char) -> String {
    let mut line = String::new();
    line.push(edge);
    for (i, w) in widths.iter().enumerate() {
        if i > 0 {
            line.push(cross);
        }
        line.extend(std::iter::repeat_n(fill, w + 2));
    }
    line.push(edge);
    line
}

/// One line of cells, each padded to its column. Past [`FIT_ROWS`] a
/// peer's text wider than its column is cut to it; a number wider than
/// its column (an exponent no honest peer holds) is written whole, as a
/// cut number would be a wrong one, and pushes that line's border out.
fn write_cells(
    out: &mut impl Write,
    cells: &[String; COLUMNS],
    widths: &[usize; COLUMNS],
) -> io::Result<()> {
    let mut line = String::from("|");
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        let cell = if i == PEER_TEXT {
            fit(cell, w)
        } else {
            cell.clone()
        };
        line.push(' ');
        line.push_str(&cell);
        line.extend(std::iter::repeat_n(' ', w.saturating_sub(width(&cell)) + 1));
        line.push('|');
    }
    writeln!(out, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mersenne_common::ll::Status;
    use mersenne_common::work::UnitResult;
    use mersenne_common::work::verify::Verification;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn row(p: u64, by: &str, agree: usize, total: usize) -> Row {
        Row {
            best: UnitResult {
                exponent: p,
                status: if p < 20 {
                    Status::Prime
                } else {
                    Status::Composite
                },
                res64: p.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                shift: 1,
                engine: "fft".into(),
                computed_by: by.into(),
                finished_ms: 1_700_000_000_000 + p,
                crunch_ms: 1,
                fft_length: 0,
                errors: 0,
                signature: None,
                certificate: None,
            },
            agree,
            total,
            verification: if agree > 1 {
                Verification::Verified
            } else {
                Verification::Unverified
            },
            waiting: None,
        }
    }

    fn render(rows: &[Row]) -> String {
        let mut tw = TableWriter::new(Vec::new());
        for r in rows {
            tw.push(r).unwrap();
        }
        String::from_utf8(tw.finish().unwrap()).unwrap()
    }

    /// The table as comfy-table laid it out before rows were streamed.
    fn comfy(rows: &[Row]) -> String {
        let mut t = comfy_table::Table::new();
        t.set_header(HEADER.to_vec());
        for r in rows {
            t.add_row(cells(r).to_vec());
        }
        format!("{t}\n{} exponents\n", rows.len())
    }

    fn id(i: u64) -> String {
        let key = mersenne_common::work::signature::key_from_label(&i.to_string());
        mersenne_common::work::signature::peer_id(&key.verifying_key().to_bytes())
    }

    #[test]
    fn a_small_table_looks_as_comfy_table_laid_it_out() {
        assert_eq!(render(&[]), comfy(&[]));
        let one = [row(3, &id(1), 1, 1)];
        assert_eq!(render(&one), comfy(&one));
        // Cells wider and narrower than their headers, a long name.
        let some: Vec<Row> = (0..50)
            .map(|i| {
                let by = if i == 7 { "x".repeat(120) } else { id(i % 3) };
                row(3 + 2 * i * i * i, &by, 1 + (i % 2) as usize, 2 + i as usize)
            })
            .collect();
        assert_eq!(render(&some), comfy(&some));
        let full: Vec<Row> = (0..FIT_ROWS as u64)
            .map(|i| row(3 + i, &id(i), 1, 1))
            .collect();
        assert_eq!(render(&full), comfy(&full));
    }

    #[test]
    fn a_peer_id_has_the_width_the_column_expects() {
        for i in 0..20 {
            assert_eq!(id(i).chars().count(), PEER_ID_CHARS, "{}", id(i));
        }
    }

    /// A writer whose bytes the test can read while the table is written.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Exponents named in a table's row lines, in order.
    fn exponents(text: &str) -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn a_large_table_is_written_as_it_comes_in_bounded_memory() {
        let n = 5 * FIT_ROWS as u64 + 17;
        let sink = Shared::default();
        let mut tw = TableWriter::new(sink.clone());
        let hostile = format!("\u{1b}[2J\n{}", "漢".repeat(10_000));
        let (mut seen, mut written) = (0, Vec::new());
        for i in 0..n {
            let p = 3 + 2 * i;
            // A peer id, an absurd name, an agreement wider than the rows
            // held back had.
            let by = match i {
                2500 => hostile.clone(),
                _ => id(i % 5),
            };
            let (agree, total) = if i == 3000 { (12, 345) } else { (1, 1) };
            tw.push(&row(p, &by, agree, total)).unwrap();
            assert!(tw.held() <= FIT_ROWS, "{} rows held", tw.held());
            // Every row past the held ones is written before the next comes.
            let new = String::from_utf8(sink.0.borrow()[seen..].to_vec()).unwrap();
            seen += new.len();
            written.extend(exponents(&new));
            if i as usize >= FIT_ROWS {
                assert_eq!(written.len() as u64, i + 1, "after row {i}");
                assert_eq!(written.last(), Some(&p));
            } else {
                assert!(written.is_empty(), "row {i} written before the widths");
            }
        }
        tw.finish().unwrap();
        let text = String::from_utf8(sink.0.take()).unwrap();
        // Every row exactly once, in order, then the count.
        let want: Vec<u64> = (0..n).map(|i| 3 + 2 * i).collect();
        assert_eq!(exponents(&text), want);
        assert!(text.ends_with(&format!("\n{n} exponents\n")));
        // Aligned: every line of the table as wide as the top border, with
        // its column separators in the same places.
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.ends_with("exponents"))
            .collect();
        assert_eq!(
            lines.len() as u64,
            2 * n + 3,
            "header, rows, dividers, borders"
        );
        let seps = |l: &str| -> Vec<usize> {
            let mut col = 0;
            let mut at = Vec::new();
            for c in l.chars() {
                if matches!(c, '|' | '+') {
                    at.push(col);
                }
                col += c.width().unwrap_or(0);
            }
            at
        };
        let top = seps(lines[0]);
        assert_eq!(top.len(), COLUMNS + 1, "{}", lines[0]);
        for l in &lines {
            if l.starts_with("+=") {
                continue;
            }
            assert_eq!(seps(l), top, "misaligned: {l}");
        }
        // The hostile name is cut to the column, its escape and newline
        // shown as U+FFFD, nothing of it left to steer a terminal.
        assert!(!text.contains('\u{1b}'));
        let cut = lines
            .iter()
            .find(|l| l.contains('\u{FFFD}'))
            .expect("the hostile row");
        assert!(cut.contains('…'), "{cut}");
        assert!(text.contains("| 12/345  |"), "the wider agreement, padded");
    }
}
