//! MessagePack by hand: the corpus needs encodings serde would never make.

/// A string header and its bytes (which need not be UTF-8).
pub fn bytes_str(b: &[u8]) -> Vec<u8> {
    let mut v = match b.len() {
        n if n < 32 => vec![0xa0 | n as u8],
        n if n < 256 => vec![0xd9, n as u8],
        n if n < 65_536 => [&[0xda][..], &(n as u16).to_be_bytes()].concat(),
        n => [&[0xdb][..], &(n as u32).to_be_bytes()].concat(),
    };
    v.extend_from_slice(b);
    v
}
pub fn s(t: &str) -> Vec<u8> {
    bytes_str(t.as_bytes())
}
pub fn arr(items: &[Vec<u8>]) -> Vec<u8> {
    let mut v = match items.len() {
        n if n < 16 => vec![0x90 | n as u8],
        n => [&[0xdc][..], &(n as u16).to_be_bytes()].concat(),
    };
    for i in items {
        v.extend_from_slice(i);
    }
    v
}
pub fn uint(n: u64) -> Vec<u8> {
    [&[0xcf][..], &n.to_be_bytes()].concat()
}
pub fn int(n: i64) -> Vec<u8> {
    [&[0xd3][..], &n.to_be_bytes()].concat()
}
pub fn float(x: f64) -> Vec<u8> {
    [&[0xcb][..], &x.to_be_bytes()].concat()
}
pub const NIL: u8 = 0xc0;
pub fn nil() -> Vec<u8> {
    vec![NIL]
}
/// A one-entry map: how rmp-serde writes an enum variant with data.
pub fn variant(name: &str, data: Vec<u8>) -> Vec<u8> {
    [vec![0x81], s(name), data].concat()
}
/// `Frame::Request(<req>)`.
pub fn request(req: Vec<u8>) -> Vec<u8> {
    variant("Request", req)
}
