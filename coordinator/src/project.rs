//! The operator's project commands: make the project key, admit a
//! volunteer (sign its membership certificate), revoke one (sign a newer
//! revocation list).
//!
//! Admission is offline, by file: the operator runs `admit` with the
//! volunteer's peer id (which `worker status` shows) and hands the
//! certificate back, as a tracker hands out a login. No invitation
//! protocol runs on the coordinator's port, so the project key never signs
//! anything a stranger sends it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use mersenne_common::grant::WorkGrant;
use mersenne_common::membership::Revocations;
use mersenne_common::work::signature::public_key_of;
use mersenne_worker::identity::Identity;
use mersenne_worker::node::now_ms;
use mersenne_worker::node::project::{CERT_FILE, REVOCATIONS_FILE, save_list};

/// The project commands.
#[derive(Debug, Clone, Subcommand)]
pub enum ProjectCmd {
    /// Create the project's key (DIR/identity.key, mode 0600) and print
    /// its peer id, which every volunteer passes as `--project`.
    ProjectKey {
        /// The project directory (keep it private and backed up).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Sign a membership certificate for a volunteer's peer id.
    Admit {
        /// The volunteer's peer id (`worker status` shows it).
        peer_id: String,
        /// The project directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 365, value_name = "DAYS")]
        days: u64,
        /// Where to write it (the volunteer puts it at DATA/membership.cert).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Grant work: sign exponents A-B with the project key into FILE, which
    /// anyone may then submit to any peer (`worker submit --range A-B
    /// --grant FILE`); a project-mode peer creates units only under a grant.
    Grant {
        /// Exponents to grant, inclusive: A-B or a single P.
        #[arg(long)]
        range: mersenne_worker::grid_cli::Range,
        /// The project directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Where to write the grant (120 bytes).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Revoke a volunteer: a newer signed revocation list in
    /// DIR/revocations; put it in the coordinator's --data (a running
    /// coordinator takes it up within a second) and peers gossip it.
    Revoke {
        /// The volunteer's peer id.
        peer_id: String,
        /// The project directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

fn member_key(peer_id: &str) -> anyhow::Result<[u8; 32]> {
    public_key_of(peer_id).with_context(|| format!("{peer_id}: not an ed25519 peer id (12D3KooW…)"))
}

fn project(dir: &Path) -> anyhow::Result<Identity> {
    if !dir.join(mersenne_worker::identity::KEY_FILE).exists() {
        anyhow::bail!(
            "{}: no project key here (create it with `coordinator project-key --dir {}`)",
            dir.display(),
            dir.display()
        );
    }
    Ok(Identity::load_or_create(dir)?)
}

/// The project's current revocation list in `dir`, if any.
pub fn current_list(dir: &Path, key: &Identity) -> anyhow::Result<Option<Revocations>> {
    let path = dir.join(REVOCATIONS_FILE);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(
            Revocations::verified(&b, &key.public_key())
                .with_context(|| path.display().to_string())?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// Signs this coordinator's own certificate into `data` (it is a member
/// like any other) and copies the project's revocation list there when it
/// is newer. Returns the project's peer id.
pub fn certify_self(dir: &Path, data: &Path) -> anyhow::Result<String> {
    let key = project(dir)?;
    std::fs::create_dir_all(data).with_context(|| data.display().to_string())?;
    let me = Identity::load_or_create(data)?;
    let now = now_ms();
    let cert = key.certify(me.public_key(), now, now + 365 * 86_400_000, now);
    let path = data.join(CERT_FILE);
    std::fs::write(&path, cert.to_bytes()).with_context(|| path.display().to_string())?;
    if let Some(list) = current_list(dir, &key)? {
        let held = current_list(data, &key).ok().flatten();
        if held.is_none_or(|h| h.version < list.version) {
            save_list(data, &list).with_context(|| data.display().to_string())?;
        }
    }
    Ok(key.peer_id())
}

/// The project's grant of exponents `from..=to`, signed with the key in
/// `dir` (`mersenne_common::grant`).
pub fn grant(dir: &Path, from: u64, to: u64) -> anyhow::Result<WorkGrant> {
    Ok(project(dir)?.grant(from, to, now_ms()))
}

/// Runs a project command.
pub fn run(cmd: ProjectCmd) -> anyhow::Result<()> {
    match cmd {
        ProjectCmd::ProjectKey { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
            let key = Identity::load_or_create(&dir)?;
            println!("{}", key.peer_id());
        }
        ProjectCmd::Admit {
            peer_id,
            dir,
            days,
            out,
        } => {
            let key = project(&dir)?;
            let member = member_key(&peer_id)?;
            let now = now_ms();
            let expires = now.saturating_add(days.max(1).saturating_mul(86_400_000));
            // The issue time in ms is unique enough as a serial for one
            // operator, and tells when it was signed.
            let cert = key.certify(member, now, expires, now);
            std::fs::write(&out, cert.to_bytes()).with_context(|| out.display().to_string())?;
            println!(
                "admitted {peer_id} for {days} days: copy {} to the volunteer's DATA/{CERT_FILE}",
                out.display()
            );
        }
        ProjectCmd::Grant { range, dir, out } => {
            // A grant no peer would take is refused here, before signing.
            mersenne_common::work::check_submission(range.from, range.to)?;
            let g = grant(&dir, range.from, range.to)?;
            std::fs::write(&out, g.to_bytes()).with_context(|| out.display().to_string())?;
            println!(
                "granted {}-{}: submit it with `worker submit --range {}-{} --grant {}`",
                range.from,
                range.to,
                range.from,
                range.to,
                out.display()
            );
        }
        ProjectCmd::Revoke { peer_id, dir } => {
            let key = project(&dir)?;
            let member = member_key(&peer_id)?;
            let (version, mut revoked) = match current_list(&dir, &key)? {
                Some(l) => (l.version, l.revoked),
                None => (0, Vec::new()),
            };
            revoked.push(member);
            let list = key.sign_revocations(version + 1, revoked);
            save_list(&dir, &list).with_context(|| dir.display().to_string())?;
            println!(
                "revoked {peer_id}: list version {} ({} keys) in {}",
                list.version,
                list.revoked.len(),
                dir.join(REVOCATIONS_FILE).display()
            );
        }
    }
    Ok(())
}
