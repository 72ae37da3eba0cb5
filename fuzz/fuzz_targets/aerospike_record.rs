//! Arbitrary bins through the Aerospike record decoder and the value codec: any record a
//! database could hand back decodes to a session or a `Decode` error, never a panic.
#![no_main]

use aerospike::Value;
use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;
use session_aerospike::{codec, BinNames};
use session_core::Id;

/// Builds Aerospike values from fuzz bytes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn int(&mut self) -> i64 {
        (0..8).fold(0i64, |acc, _| (acc << 8) | i64::from(self.byte()))
    }

    fn text(&mut self) -> String {
        let n = usize::from(self.byte() % 16);
        (0..n).map(|_| char::from(self.byte() % 128)).collect()
    }

    fn value(&mut self, depth: u8) -> Value {
        match self.byte() % if depth > 3 { 7 } else { 10 } {
            0 => Value::Nil,
            1 => Value::Bool(self.byte() % 2 == 0),
            2 => Value::Int(self.int()),
            3 => Value::from(f64::from_bits(self.int() as u64)),
            4 => Value::String(self.text()),
            5 => Value::Blob((0..self.byte() % 12).map(|_| self.byte()).collect()),
            6 => Value::GeoJson(self.text()),
            7 => Value::List((0..self.byte() % 4).map(|_| self.value(depth + 1)).collect()),
            8 => Value::HashMap(
                (0..self.byte() % 4)
                    .map(|_| (self.value(depth + 1), self.value(depth + 1)))
                    .collect(),
            ),
            _ => Value::OrderedMap(
                (0..self.byte() % 4)
                    .map(|_| (Value::String(self.text()), self.value(depth + 1)))
                    .collect(),
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let names = ["data", "expires", "expiry", "v", "other"];
    let mut bins = IndexMap::new();
    for _ in 0..input.byte() % 6 {
        let name = names[usize::from(input.byte()) % names.len()];
        // Bias towards the real format so the decoder gets deep.
        let value = match (name, input.byte() % 3) {
            ("v", 0) => Value::Int(i64::from(input.byte() % 3)),
            ("expires", 0) => Value::Int(4_000_000_000),
            ("expires", 1) => Value::Int(4_000_000_000_000_000_000),
            _ => input.value(0),
        };
        let _ = codec::to_json(&value);
        bins.insert(name.to_string(), value);
    }
    let now = input.int();
    let _ = codec::decode_record(&BinNames::default(), &Id::random(), &bins, now);
});
