//! Length-prefixed frames on a request-response stream.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::net::MAX_FRAME;

/// Bytes of inbound requests a peer holds at once, over all its
/// connections: four frames at the cap. Each request is charged its
/// declared length before its body is read, and the charge lasts as long
/// as the frame does, so a hundred connections that each send a 16 MiB
/// frame wait their turn (the kernel's flow control holds the rest on the
/// senders' side) instead of pinning 1.6 GB.
pub const INBOUND_BYTES: usize = 4 * MAX_FRAME;

/// Length-prefixed frames of at most [`MAX_FRAME`] bytes; inbound requests
/// share one budget of [`INBOUND_BYTES`]. Answers to this peer's own
/// requests are not charged: their number is this peer's choice, and a
/// request that waits for another peer's answer must never wait on its
/// own budget.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    inbound: Arc<Semaphore>,
    broken: Arc<AtomicU64>,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec {
            inbound: Arc::new(Semaphore::new(INBOUND_BYTES)),
            broken: Arc::default(),
        }
    }
}

impl FrameCodec {
    /// Inbound requests that never became a frame: a stream that ended
    /// inside (or before) its length prefix or body, a length over the
    /// cap, or a read dropped unfinished (its connection closed in the
    /// middle of a frame, or the request timed out). libp2p drops such a
    /// stream without an event (the request never existed for it), so
    /// the codec is the only place they can be counted.
    pub fn broken(&self) -> Arc<AtomicU64> {
        self.broken.clone()
    }
}

/// Counts a request read that ends without a frame when it is dropped:
/// failed, or cancelled half way (a connection that closes mid-frame ends
/// its read by dropping it, with no error to see).
struct Unfinished<'a>(Option<&'a AtomicU64>);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(count) = self.0 {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A frame's bytes with the part of the budget they hold.
struct Charged {
    buf: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// Reads a frame's length prefix and checks it against the cap before
/// anything is allocated.
async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame size too big: {n} bytes, at most {MAX_FRAME}"),
        ));
    }
    Ok(n)
}

/// Reads a body of `n` bytes; the buffer grows only as bytes arrive, so a
/// peer that claims 16 MiB and sends nothing holds almost nothing.
async fn read_body<T: AsyncRead + Unpin + Send>(io: &mut T, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n.min(64 << 10));
    io.take(n as u64).read_to_end(&mut buf).await?;
    if buf.len() != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// Reads one frame, uncharged.
async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Bytes> {
    let n = read_len(io).await?;
    Ok(read_body(io, n).await?.into())
}

/// Reads one frame charged to `budget` for as long as its bytes live.
async fn read_charged<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    budget: &Arc<Semaphore>,
) -> io::Result<Bytes> {
    let n = read_len(io).await?;
    // n <= MAX_FRAME < INBOUND_BYTES, so the charge can always be met once
    // earlier frames are gone; the semaphore is never closed.
    let permit = budget
        .clone()
        .acquire_many_owned(n as u32)
        .await
        .map_err(|_| io::Error::other("inbound budget closed"))?;
    let buf = read_body(io, n).await?;
    Ok(Bytes::from_owner(Charged {
        buf,
        _permit: permit,
    }))
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, frame: Bytes) -> io::Result<()> {
    let n = u32::try_from(frame.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame over the cap"))?;
    io.write_all(&n.to_be_bytes()).await?;
    io.write_all(&frame).await?;
    io.flush().await
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Bytes;
    type Response = Bytes;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut unfinished = Unfinished(Some(&self.broken));
        let frame = read_charged(io, &self.inbound).await;
        if frame.is_ok() {
            unfinished.0 = None;
        }
        frame
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, r: Bytes) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, r).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame's charge is held while its bytes live: a second frame that
    /// would pass the budget waits until the first is dropped.
    #[tokio::test]
    async fn inbound_frames_share_one_budget() {
        let budget = Arc::new(Semaphore::new(10));
        let frame = |body: &[u8]| {
            let mut v = (body.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(body);
            v
        };
        let a = frame(b"0123456");
        let first = read_charged(&mut &a[..], &budget).await.unwrap();
        assert_eq!(&first[..], b"0123456");
        assert_eq!(budget.available_permits(), 3);
        let b = frame(b"abcdef");
        let second = tokio::spawn({
            let budget = budget.clone();
            async move { read_charged(&mut &b[..], &budget).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "read past the budget");
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), second)
            .await
            .expect("read once the first frame was gone")
            .unwrap();
        assert_eq!(&second[..], b"abcdef");
        assert_eq!(budget.available_permits(), 4);
        drop(second);
        assert_eq!(budget.available_permits(), 10);
    }

    /// A frame header over the cap is refused before any allocation, and a
    /// frame that ends early is an error, not a short frame.
    #[tokio::test]
    async fn frames_are_bounded() {
        let mut over = &((MAX_FRAME as u32) + 1).to_be_bytes()[..];
        let e = read_frame(&mut over).await.unwrap_err();
        assert!(e.to_string().contains("frame size too big"), "{e}");
        let mut short: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
        assert!(read_frame(&mut short).await.is_err());
        let mut buf = Vec::new();
        write_frame(&mut buf, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(read_frame(&mut &buf[..]).await.unwrap(), &b"hello"[..]);
    }
}
