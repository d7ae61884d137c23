use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Feeds `chunks` to `decoder` one at a time, then ends the stream; every item in order.
pub(crate) fn decode_all<D: Decoder>(
    decoder: &mut D,
    chunks: &[&[u8]],
) -> Result<Vec<D::Item>, D::Error> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf)? {
            out.push(item);
        }
    }
    while let Some(item) = decoder.decode_eof(&mut buf)? {
        out.push(item);
    }
    Ok(out)
}
