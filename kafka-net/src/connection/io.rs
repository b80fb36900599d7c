//! The connection's writer and reader tasks: frames out in order, frames in matched to
//! their requests by correlation id.

use super::*;

pub(super) async fn write_loop(
    write: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write);
    while let Some(first) = rx.recv().await {
        let mut written = Vec::new();
        let mut next = Some(first);
        // Write everything queued, then flush once.
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
                for part in msg.frame.parts() {
                    if let Err(e) = out.write_all(part).await {
                        shared.poison(Error::from(e));
                        break;
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush().await {
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
