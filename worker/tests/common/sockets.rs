//! Raw sockets for the flood tests and the `flood` example (which includes
//! this file by path): the limit on open files, and whether a peer closed
//! a connection.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;

/// Raises this process's soft limit on open files to `want` if it can (a
/// peer started after inherits it); the limit it has then.
#[cfg(target_os = "linux")]
// std has no API for the limit on open files.
#[allow(unsafe_code)]
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `lim`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

/// Elsewhere the limit is left as it is and taken to be enough.
#[cfg(not(target_os = "linux"))]
pub fn raise_fd_limit(want: u64) -> u64 {
    want
}

/// Whether the peer has closed `s` (non-blocking): the end of the stream
/// or a reset; what it sent first (its multistream header) is read past.
pub fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    for _ in 0..16 {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}
