//! Length-prefixed frames on a request-response stream.

use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};

use crate::net::MAX_FRAME;

/// Length-prefixed frames of at most [`MAX_FRAME`] bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec;

/// Reads one frame: the bound is checked before anything is allocated,
/// and the buffer grows only as bytes arrive, so a peer that claims 16 MiB
/// and sends nothing holds almost nothing.
async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame size too big: {n} bytes, at most {MAX_FRAME}"),
        ));
    }
    let mut buf = Vec::with_capacity(n.min(64 << 10));
    io.take(n as u64).read_to_end(&mut buf).await?;
    if buf.len() != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf.into())
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
        read_frame(io).await
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
