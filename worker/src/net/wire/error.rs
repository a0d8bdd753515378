//! What goes wrong on the wire, and how text from a peer is cut before
//! it is quoted in an error or a log line.

/// Errors on the wire.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Socket-level failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The transport could not reach the peer or carry the request: no
    /// connection, a failed handshake, another protocol version, a frame
    /// over the size cap.
    #[error("{0}")]
    Transport(String),
    /// The key that answered at an address is not the one asked for (a
    /// multiaddr's `/p2p/…`, or the key proven there before).
    #[error("the peer at {addr} is {obtained}, not the peer id asked for: refused")]
    WrongPeer {
        /// The address dialled.
        addr: String,
        /// The peer id its handshake proved.
        obtained: String,
    },
    /// An address that is neither `host:port` nor a usable multiaddr.
    #[error("bad address: {0}")]
    Address(String),
    /// Listening failed.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// The peer did not answer in time.
    #[error("request to {0} timed out")]
    Timeout(String),
    /// A frame did not decode.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The peer closed the connection or sent a frame out of place.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer answered with an error.
    #[error("peer refused: {0}")]
    Remote(String),
}

/// Longest peer-supplied text written whole into a log line or an error.
pub const LOG_TEXT_MAX: usize = 200;

/// `text` cut to [`LOG_TEXT_MAX`] bytes (at a character boundary) with a
/// marker saying how long it was: text that came from a peer is never
/// echoed whole, so a 15 MiB address is not 15 MiB of log.
pub fn bounded(text: &str) -> String {
    if text.len() <= LOG_TEXT_MAX {
        return text.to_string();
    }
    let mut end = LOG_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: {} bytes in all]", &text[..end], text.len())
}
