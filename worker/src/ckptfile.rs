//! Checkpoint files that survive a crash or power cut at any moment: the
//! newest state in `P.ckpt`, the one before it in `P.ckpt.bak`, as Prime95
//! and GpuOwl keep them.
//!
//! A save writes `P.ckpt.tmp`, fsyncs it, moves the current `P.ckpt` to
//! `P.ckpt.bak`, renames the new file into place and fsyncs the directory,
//! so at every instant at least one complete, checksummed file is on disk.
//! A load takes the newest file that reads back intact and decodes, and
//! falls back to the backup otherwise (a torn write, a flipped bit).
//!
//! Files start with a magic and the SHA-256 of the payload; files without
//! the magic (written before this format) are read as a bare payload, which
//! the caller's decoder still validates.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mersenne_common::ll::{Checkpoint, LlError};
use sha2::{Digest, Sha256};

/// First bytes of every checkpoint file of this format.
const MAGIC: &[u8; 8] = b"MRCKPT1\n";
const HEADER: usize = MAGIC.len() + 32;

/// Why a checkpoint file was passed over.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// It could not be read.
    #[error("unreadable: {0}")]
    Io(#[from] io::Error),
    /// Shorter than its own header: a torn write.
    #[error("truncated header")]
    Truncated,
    /// The payload does not match the checksum in the header.
    #[error("checksum mismatch")]
    Checksum,
    /// The payload is intact but the caller's decoder refused it (the
    /// decoder's own message).
    #[error("{0}")]
    Decode(String),
}

/// What [`load`] found.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The decoded state.
    pub value: T,
    /// The file it came from.
    pub path: PathBuf,
    /// Why the newest file was passed over, when the state came from the
    /// backup.
    pub newest_rejected: Option<Rejected>,
}

/// The backup of the checkpoint at `path`: `P.ckpt` → `P.ckpt.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    with_suffix(path, ".bak")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Saves `payload` at `path` durably, keeping the previous file as the
/// backup. Creates the directory if needed.
pub fn save(path: &Path, payload: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let tmp = with_suffix(path, ".tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&Sha256::digest(payload))?;
        f.write_all(payload)?;
        f.sync_all()?;
    }
    match fs::rename(path, backup_path(path)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::rename(&tmp, path)?;
    // The renames are durable only once the directory itself is synced.
    File::open(dir)?.sync_all()
}

/// Why neither the checkpoint at a path nor its backup could be used,
/// when at least one of them is there: the caller starts over, and should
/// say so.
#[derive(Debug, thiserror::Error)]
#[error("newest file: {newest}; backup: {backup}")]
pub struct Refused {
    /// Why `P.ckpt` was passed over.
    pub newest: Rejected,
    /// Why `P.ckpt.bak` was passed over.
    pub backup: Rejected,
}

/// Whether `r` says only that the file is not there.
fn is_missing(r: &Rejected) -> bool {
    matches!(r, Rejected::Io(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Loads the newest intact state at `path`, else its backup: `Ok(None)`
/// when neither file exists, and the reasons both were refused when
/// either exists but neither reads back and decodes.
pub fn try_load<T, E: std::fmt::Display>(
    path: &Path,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<Option<Loaded<T>>, Refused> {
    let read = |p: &Path| -> Result<T, Rejected> {
        let bytes = fs::read(p)?;
        decode(unframe(&bytes)?).map_err(|e| Rejected::Decode(e.to_string()))
    };
    let newest_rejected = match read(path) {
        Ok(value) => {
            return Ok(Some(Loaded {
                value,
                path: path.to_path_buf(),
                newest_rejected: None,
            }));
        }
        Err(e) => e,
    };
    let bak = backup_path(path);
    match read(&bak) {
        Ok(value) => Ok(Some(Loaded {
            value,
            path: bak,
            newest_rejected: Some(newest_rejected),
        })),
        Err(backup) if is_missing(&newest_rejected) && is_missing(&backup) => Ok(None),
        Err(backup) => Err(Refused {
            newest: newest_rejected,
            backup,
        }),
    }
}

/// As [`try_load`], with no reason when both files are refused.
pub fn load<T, E: std::fmt::Display>(
    path: &Path,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Option<Loaded<T>> {
    try_load(path, decode).ok().flatten()
}

/// The payload of a file's bytes, checked against its checksum.
fn unframe(bytes: &[u8]) -> Result<&[u8], Rejected> {
    if !bytes.starts_with(MAGIC) {
        return Ok(bytes);
    }
    if bytes.len() < HEADER {
        return Err(Rejected::Truncated);
    }
    let payload = &bytes[HEADER..];
    if Sha256::digest(payload).as_slice() != &bytes[MAGIC.len()..HEADER] {
        return Err(Rejected::Checksum);
    }
    Ok(payload)
}

/// Removes the checkpoint at `path`, its backup and any half-written file.
pub fn remove(path: &Path) -> io::Result<()> {
    for p in [
        path.to_path_buf(),
        backup_path(path),
        with_suffix(path, ".tmp"),
    ] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Saves a Lucas–Lehmer checkpoint with [`save`].
pub fn save_checkpoint(path: &Path, c: &Checkpoint) -> io::Result<()> {
    save(path, &c.to_bytes())
}

/// Why the payload of a Lucas–Lehmer checkpoint file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BadCheckpoint {
    /// It does not decode as a checkpoint.
    #[error(transparent)]
    Decode(#[from] LlError),
    /// It is a checkpoint of another exponent.
    #[error("checkpoint of M{found}, not M{wanted}")]
    OtherExponent {
        /// The exponent the file holds.
        found: u64,
        /// The exponent asked for.
        wanted: u64,
    },
}

/// Loads a Lucas–Lehmer checkpoint of M_p with [`try_load`]: a file
/// naming another exponent is refused.
pub fn try_load_checkpoint(path: &Path, p: u64) -> Result<Option<Loaded<Checkpoint>>, Refused> {
    try_load(path, |b| {
        let c = Checkpoint::from_bytes(b)?;
        if c.exponent == p {
            Ok(c)
        } else {
            Err(BadCheckpoint::OtherExponent {
                found: c.exponent,
                wanted: p,
            })
        }
    })
}

/// As [`try_load_checkpoint`], with no reason when both files are refused.
pub fn load_checkpoint(path: &Path, p: u64) -> Option<Loaded<Checkpoint>> {
    try_load_checkpoint(path, p).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mersenne_common::ll::{EngineKind, new_engine};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ckptfile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn ckpt(p: u64, iterations: u64) -> Checkpoint {
        let mut e = new_engine(EngineKind::Reference, p, 3).unwrap();
        e.advance(iterations).unwrap();
        e.checkpoint()
    }

    #[test]
    fn save_keeps_the_previous_file_as_backup_and_load_takes_the_newest() {
        let d = dir("backup");
        let path = d.join("521.ckpt");
        save_checkpoint(&path, &ckpt(521, 10)).unwrap();
        assert!(!backup_path(&path).exists());
        save_checkpoint(&path, &ckpt(521, 20)).unwrap();
        let got = load_checkpoint(&path, 521).unwrap();
        assert_eq!(got.value, ckpt(521, 20));
        assert!(got.newest_rejected.is_none());
        let bak = load_checkpoint(&backup_path(&path), 521).unwrap();
        assert_eq!(bak.value, ckpt(521, 10));
        assert!(!with_suffix(&path, ".tmp").exists());
        remove(&path).unwrap();
        assert!(!path.exists() && !backup_path(&path).exists());
        assert!(load_checkpoint(&path, 521).is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_newest_file_falls_back_to_the_backup() {
        let d = dir("damaged");
        let path = d.join("607.ckpt");
        save_checkpoint(&path, &ckpt(607, 5)).unwrap();
        save_checkpoint(&path, &ckpt(607, 50)).unwrap();
        let good = fs::read(&path).unwrap();
        // A flipped bit may still decode as a valid checkpoint (in the
        // residue, say); the checksum catches it.
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        // A torn write: the file cut short.
        let torn = good[..good.len() / 2].to_vec();
        for (what, bytes) in [("flipped bit", flipped), ("torn write", torn)] {
            fs::write(&path, &bytes).unwrap();
            let got = load_checkpoint(&path, 607).unwrap();
            assert_eq!(got.value, ckpt(607, 5), "{what}");
            assert_eq!(got.path, backup_path(&path), "{what}");
            // Both are caught by the file's own header checksum, before
            // the checkpoint decoder sees them.
            assert!(
                matches!(got.newest_rejected, Some(Rejected::Checksum)),
                "{what}: {:?}",
                got.newest_rejected
            );
        }
        // Missing newest (a crash between the two renames of a save).
        fs::remove_file(&path).unwrap();
        assert_eq!(load_checkpoint(&path, 607).unwrap().value, ckpt(607, 5));
        // Another exponent's file is not ours.
        assert!(load_checkpoint(&path, 521).is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_refused_checkpoint_says_why_and_a_missing_one_is_no_refusal() {
        let d = dir("refused");
        fs::create_dir_all(&d).unwrap();
        let path = d.join("607.ckpt");
        // Neither file there: a fresh start, nothing refused.
        assert!(matches!(try_load_checkpoint(&path, 607), Ok(None)));
        save_checkpoint(&path, &ckpt(607, 5)).unwrap();
        let good = fs::read(&path).unwrap();
        // Another exponent's file: the decoder's reason; no backup yet.
        let why = try_load_checkpoint(&path, 521).unwrap_err();
        assert!(
            matches!(&why.newest, Rejected::Decode(m) if m == "checkpoint of M607, not M521"),
            "{why:?}"
        );
        assert!(is_missing(&why.backup), "{why:?}");
        assert!(why.to_string().contains("not M521"), "{why}");
        // A flipped bit in the newest file and a torn backup: both reasons.
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        fs::write(&path, &flipped).unwrap();
        fs::write(backup_path(&path), &good[..HEADER - 1]).unwrap();
        let why = try_load_checkpoint(&path, 607).unwrap_err();
        assert!(matches!(why.newest, Rejected::Checksum), "{why:?}");
        assert!(matches!(why.backup, Rejected::Truncated), "{why:?}");
        assert_eq!(
            why.to_string(),
            "newest file: checksum mismatch; backup: truncated header"
        );
        assert!(load_checkpoint(&path, 607).is_none());
        // A newest "file" that cannot be read at all (a directory) and no
        // backup: refused as unreadable, not taken for a missing file.
        fs::remove_file(&path).unwrap();
        fs::remove_file(backup_path(&path)).unwrap();
        fs::create_dir(&path).unwrap();
        let why = try_load_checkpoint(&path, 607).unwrap_err();
        assert!(
            matches!(&why.newest, Rejected::Io(e) if e.kind() != io::ErrorKind::NotFound),
            "{why:?}"
        );
        assert!(
            why.to_string().starts_with("newest file: unreadable: "),
            "{why}"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn files_without_the_header_are_read_as_a_bare_payload() {
        let d = dir("legacy");
        fs::create_dir_all(&d).unwrap();
        let path = d.join("521.ckpt");
        fs::write(&path, ckpt(521, 7).to_bytes()).unwrap();
        assert_eq!(load_checkpoint(&path, 521).unwrap().value, ckpt(521, 7));
        fs::remove_dir_all(&d).unwrap();
    }
}
