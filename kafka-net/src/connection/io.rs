//! The connection's writer and reader tasks: frames out in order, frames in matched to
//! their requests by correlation id.

use super::*;

/// The writer's buffer: small frames and the small parts of large ones are gathered
/// in it; a run of parts at least this large goes to the socket as they are, in one
/// vectored write, without being copied.
const WRITE_BUFFER: usize = 8 * 1024;

/// Parts handed to one vectored write at most (well under the 1,024 of `IOV_MAX`).
const MAX_SLICES: usize = 128;

pub(super) async fn write_loop(
    write: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write);
    let mut frames: Vec<Frame> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut written = Vec::new();
        let mut next = Some(first);
        // Everything queued goes out together, then one flush.
        while let Some(msg) = next.take() {
            if let Some(e) = shared.closed_error() {
                reply_error(msg.reply, e);
            } else {
                match msg.reply {
                    Reply::Response(tx) => {
                        lock(&shared.pending).insert(msg.correlation_id, Waiter::Future(tx));
                    }
                    Reply::Callback(callback) => {
                        let waiter = Waiter::Callback(callback);
                        lock(&shared.pending).insert(msg.correlation_id, waiter);
                    }
                    Reply::Written(tx) => written.push(tx),
                }
                frames.push(msg.frame);
            }
            next = rx.try_recv().ok();
        }
        let sent = match write_frames(&mut out, &frames).await {
            Ok(()) => out.flush().await,
            Err(e) => Err(e),
        };
        frames.clear();
        if let Err(e) = sent {
            shared.poison(Error::from(e));
        }
        let result = match shared.closed_error() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        for tx in written {
            let _ = tx.send(result.clone());
        }
    }
}

/// Writes every part of the frames, in order, with vectored writes: the buffered
/// writer copies a run of parts smaller than its buffer and hands a larger run to the
/// socket whole.
async fn write_frames(
    out: &mut (impl AsyncWrite + Unpin),
    frames: &[Frame],
) -> std::io::Result<()> {
    // Plain indexes: iterator adapters held across the awaits below make the task's
    // future fail to be `Send` (a known limit of the compiler's lifetime inference).
    let (mut frame, mut part) = (0, 0);
    let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(MAX_SLICES);
    loop {
        slices.clear();
        while slices.len() < MAX_SLICES && frame < frames.len() {
            let parts = frames[frame].parts();
            match parts.get(part) {
                Some(p) => {
                    if !p.is_empty() {
                        slices.push(std::io::IoSlice::new(p));
                    }
                    part += 1;
                }
                None => (frame, part) = (frame + 1, 0),
            }
        }
        if slices.is_empty() {
            return Ok(());
        }
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = out.write_vectored(left).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            std::io::IoSlice::advance_slices(&mut left, n);
        }
    }
}

fn reply_error(reply: Reply, e: Error) {
    match reply {
        Reply::Response(tx) => {
            let _ = tx.send(Err(e));
        }
        Reply::Written(tx) => {
            let _ = tx.send(Err(e));
        }
        Reply::Callback(callback) => callback.call(Err(e)),
    }
}

pub(super) async fn read_loop(
    mut read: impl AsyncRead + Unpin,
    shared: Arc<Shared>,
    max_size: usize,
) {
    let err = loop {
        match read_frame(&mut read, max_size).await {
            Ok(frame) => {
                shared.metrics.received(frame.len() + 4);
                let id = match peek_correlation_id(&frame) {
                    Ok(id) => id,
                    Err(e) => break Error::new(ErrorKind::Malformed(e.to_string())),
                };
                let waiting = lock(&shared.pending).remove(&id);
                match waiting {
                    Some(waiter) => waiter.answer(Ok(frame)),
                    None => {
                        break Error::new(ErrorKind::Malformed(format!(
                            "response with correlation id {id} matches no request in flight"
                        )))
                    }
                }
            }
            Err(e) => break e,
        }
    };
    shared.poison(err.with_broker(shared.addr.clone()));
}

/// Reads one frame; memory grows with the bytes that actually arrive, never with what
/// the size prefix claims.
async fn read_frame(read: &mut (impl AsyncRead + Unpin), max_size: usize) -> Result<Bytes> {
    let mut prefix = [0u8; 4];
    match read.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::new(ErrorKind::ConnectionClosed(
                "closed by the broker".into(),
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let size = frame_size(&prefix, max_size)
        .map_err(|e| Error::new(ErrorKind::Malformed(e.to_string())))?
        .unwrap_or(0);
    let mut buf = BytesMut::with_capacity(size.min(64 * 1024));
    while buf.len() < size {
        if buf.capacity() == buf.len() {
            buf.reserve((size - buf.len()).min(buf.len().max(64 * 1024)));
        }
        let want = size - buf.len();
        let n = (&mut *read).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(Error::new(ErrorKind::ConnectionClosed(format!(
                "closed by the broker in the middle of a {size}-byte response ({} bytes read)",
                buf.len()
            ))));
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A socket that takes at most `max` bytes per write, vectored or not.
    struct Trickle {
        got: Vec<u8>,
        max: usize,
        vectored: bool,
        writes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.got.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.max - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.max {
                    break;
                }
            }
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_are_written_whole_and_in_order_through_partial_writes() {
        let part = |len: usize, fill: u8| Bytes::from(vec![fill; len]);
        // Small frames, empty parts, and a segmented frame of more parts than one
        // vectored write takes, some larger than the buffer.
        let mut segments = vec![part(61, 1), Bytes::new(), part(WRITE_BUFFER * 3, 2)];
        segments.extend((0..MAX_SLICES + 5).map(|i| part(1 + i % 300, i as u8)));
        segments.push(part(WRITE_BUFFER + 1, 3));
        let frames = vec![
            Frame::One(part(40, 7)),
            Frame::Segments(segments),
            Frame::One(Bytes::new()),
            Frame::One(part(10, 9)),
        ];
        let want: Vec<u8> = frames
            .iter()
            .flat_map(|f| f.parts().iter().flat_map(|p| p.iter().copied()))
            .collect();
        for vectored in [true, false] {
            for max in [1, 7, 4096, 1 << 20] {
                let socket = Trickle {
                    got: Vec::new(),
                    max,
                    vectored,
                    writes: 0,
                };
                let mut out = BufWriter::with_capacity(WRITE_BUFFER, socket);
                write_frames(&mut out, &frames).await.unwrap();
                out.flush().await.unwrap();
                let socket = out.into_inner();
                assert!(
                    socket.got == want,
                    "vectored {vectored}, {max} bytes a write"
                );
                if vectored && max == 1 << 20 {
                    // Runs larger than the buffer go out as they are: two writes of
                    // up to MAX_SLICES parts each, nothing copied part by part.
                    assert!(socket.writes <= 3, "{} writes", socket.writes);
                }
            }
        }
    }

    #[tokio::test]
    async fn a_socket_that_takes_nothing_is_an_error_not_a_loop() {
        let socket = Trickle {
            got: Vec::new(),
            max: 0,
            vectored: true,
            writes: 0,
        };
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, socket);
        let frames = vec![Frame::One(Bytes::from(vec![1u8; WRITE_BUFFER * 2]))];
        let e = write_frames(&mut out, &frames).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WriteZero);
    }
}
