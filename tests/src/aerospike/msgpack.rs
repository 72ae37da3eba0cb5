//! Just enough msgpack for the test server: measure an element, read small integers,
//! split maps and lists into their raw elements, and write map and list headers.
//!
//! Elements stay as raw bytes: the server never needs their values, only their
//! boundaries (map keys compare byte-for-byte, which is exact for the canonical
//! encodings the client writes).

/// Why a buffer is not msgpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn be(bytes: &[u8], at: usize, n: usize) -> Result<u64, Malformed> {
    let s = bytes.get(at..at + n).ok_or(Malformed)?;
    Ok(s.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Length in bytes of the element starting at `at`.
pub fn element_len(b: &[u8], at: usize) -> Result<usize, Malformed> {
    let m = *b.get(at).ok_or(Malformed)?;
    let fixed = |n: usize| Ok(1 + n);
    let sized = |hdr: usize, n: u64| -> Result<usize, Malformed> {
        let total = hdr + usize::try_from(n).map_err(|_| Malformed)?;
        if at + total > b.len() {
            return Err(Malformed);
        }
        Ok(total)
    };
    let container = |hdr: usize, count: u64, per: u64| -> Result<usize, Malformed> {
        let mut pos = at + hdr;
        for _ in 0..count.checked_mul(per).ok_or(Malformed)? {
            pos += element_len(b, pos)?;
        }
        Ok(pos - at)
    };
    match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => fixed(0),
        0x80..=0x8f => container(1, u64::from(m & 0x0f), 2),
        0x90..=0x9f => container(1, u64::from(m & 0x0f), 1),
        0xa0..=0xbf => sized(1, u64::from(m & 0x1f)),
        0xc4 | 0xd9 => sized(2, be(b, at + 1, 1)?),
        0xc5 | 0xda => sized(3, be(b, at + 1, 2)?),
        0xc6 | 0xdb => sized(5, be(b, at + 1, 4)?),
        0xc7 => sized(3, be(b, at + 1, 1)?),
        0xc8 => sized(4, be(b, at + 1, 2)?),
        0xc9 => sized(6, be(b, at + 1, 4)?),
        0xca => fixed(4),
        0xcb => fixed(8),
        0xcc | 0xd0 => fixed(1),
        0xcd | 0xd1 => fixed(2),
        0xce | 0xd2 => fixed(4),
        0xcf | 0xd3 => fixed(8),
        0xd4 => fixed(2),
        0xd5 => fixed(3),
        0xd6 => fixed(5),
        0xd7 => fixed(9),
        0xd8 => fixed(17),
        0xdc => container(3, be(b, at + 1, 2)?, 1),
        0xdd => container(5, be(b, at + 1, 4)?, 1),
        0xde => container(3, be(b, at + 1, 2)?, 2),
        0xdf => container(5, be(b, at + 1, 4)?, 2),
        0xc1 => Err(Malformed),
    }
}

/// Reads an integer element at `at`.
pub fn read_int(b: &[u8], at: usize) -> Result<i64, Malformed> {
    let m = *b.get(at).ok_or(Malformed)?;
    Ok(match m {
        0x00..=0x7f => i64::from(m),
        0xe0..=0xff => i64::from(m as i8),
        0xcc => be(b, at + 1, 1)? as i64,
        0xcd => be(b, at + 1, 2)? as i64,
        0xce => be(b, at + 1, 4)? as i64,
        0xcf => be(b, at + 1, 8)? as i64,
        0xd0 => i64::from(be(b, at + 1, 1)? as u8 as i8),
        0xd1 => i64::from(be(b, at + 1, 2)? as u16 as i16),
        0xd2 => i64::from(be(b, at + 1, 4)? as u32 as i32),
        0xd3 => be(b, at + 1, 8)? as i64,
        _ => return Err(Malformed),
    })
}

/// The count and header length of the array or map at `at`.
fn header(b: &[u8], at: usize, map: bool) -> Result<(usize, usize), Malformed> {
    let m = *b.get(at).ok_or(Malformed)?;
    let (count, hdr) = match (m, map) {
        (0x80..=0x8f, true) | (0x90..=0x9f, false) => (u64::from(m & 0x0f), 1),
        (0xde, true) | (0xdc, false) => (be(b, at + 1, 2)?, 3),
        (0xdf, true) | (0xdd, false) => (be(b, at + 1, 4)?, 5),
        _ => return Err(Malformed),
    };
    Ok((usize::try_from(count).map_err(|_| Malformed)?, hdr))
}

/// The raw elements of the array at `at`.
pub fn list(b: &[u8], at: usize) -> Result<Vec<Vec<u8>>, Malformed> {
    let (count, hdr) = header(b, at, false)?;
    let mut pos = at + hdr;
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let n = element_len(b, pos)?;
        out.push(b[pos..pos + n].to_vec());
        pos += n;
    }
    Ok(out)
}

/// An Aerospike map: its order flags (from the optional ext header) and raw pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawMap {
    /// The order flags of the `c7 00 <flags>` header entry, if the map had one.
    pub order: Option<u8>,
    /// Raw key and value bytes, in stored order.
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RawMap {
    /// Splits the map at `at`.
    pub fn parse(b: &[u8], at: usize) -> Result<RawMap, Malformed> {
        let (count, hdr) = header(b, at, true)?;
        let mut pos = at + hdr;
        let mut map = RawMap::default();
        for i in 0..count {
            let kn = element_len(b, pos)?;
            let key = &b[pos..pos + kn];
            pos += kn;
            let vn = element_len(b, pos)?;
            let value = &b[pos..pos + vn];
            pos += vn;
            if i == 0 && key.len() == 3 && key[0] == 0xc7 && key[1] == 0 {
                map.order = Some(key[2]);
                continue;
            }
            map.pairs.push((key.to_vec(), value.to_vec()));
        }
        Ok(map)
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key, value)),
        }
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let before = self.pairs.len();
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.len() != before
    }

    /// The map as msgpack, with its order header when it had one.
    pub fn encode(&self) -> Vec<u8> {
        let count = self.pairs.len() + usize::from(self.order.is_some());
        let mut out = map_header(count);
        if let Some(flags) = self.order {
            out.extend_from_slice(&[0xc7, 0x00, flags, 0xc0]);
        }
        for (k, v) in &self.pairs {
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        out
    }
}

/// A map header for `count` pairs.
pub fn map_header(count: usize) -> Vec<u8> {
    if count < 16 {
        vec![0x80 | count as u8]
    } else if count < 1 << 16 {
        let mut v = vec![0xde];
        v.extend_from_slice(&(count as u16).to_be_bytes());
        v
    } else {
        let mut v = vec![0xdf];
        v.extend_from_slice(&(count as u32).to_be_bytes());
        v
    }
}

/// An integer as msgpack.
pub fn int(v: i64) -> Vec<u8> {
    if (0..128).contains(&v) {
        vec![v as u8]
    } else {
        let mut out = vec![0xd3];
        out.extend_from_slice(&v.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_splits() {
        // {"a": 1, "bc": [1, -1]} with Aerospike's string particle prefix (3).
        let b = [
            0x82, 0xa2, 3, b'a', 0x01, 0xa3, 3, b'b', b'c', 0x92, 0x01, 0xff,
        ];
        assert_eq!(element_len(&b, 0), Ok(b.len()));
        let m = RawMap::parse(&b, 0).unwrap();
        assert_eq!(m.order, None);
        assert_eq!(m.pairs.len(), 2);
        assert_eq!(m.encode(), b.to_vec());
        assert_eq!(
            read_int(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 0),
            Ok(-2)
        );
        assert_eq!(element_len(&[0x92, 0x01], 0), Err(Malformed));
    }

    #[test]
    fn keeps_the_order_header() {
        let b = [0x82, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 3, b'a', 0x01];
        let mut m = RawMap::parse(&b, 0).unwrap();
        assert_eq!(m.order, Some(1));
        assert_eq!(m.encode(), b.to_vec());
        m.put(vec![0xa2, 3, b'a'], vec![0x02]);
        m.put(vec![0xa2, 3, b'z'], vec![0x03]);
        assert!(m.remove(&[0xa2, 3, b'a']));
        assert_eq!(m.pairs, vec![(vec![0xa2, 3, b'z'], vec![0x03])]);
    }
}
