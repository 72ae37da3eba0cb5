//! What a value costs against a session's size limit.

use serde_json::Value;

/// The length of `value`'s compact JSON text: serde_json writes it into a counter, so
/// the count is its own, escapes and number formats included, and nothing is stored.
pub(crate) fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A `Value` always serializes (its map keys are strings).
    serde_json::to_writer(&mut count, value).map_or(0, |()| count.0)
}

#[cfg(test)]
mod tests {
    use super::json_len;
    use serde_json::json;

    #[test]
    fn json_len_is_serde_jsons_length() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(9),
            json!(10),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-1),
            json!(1.5),
            json!(-0.000_123),
            json!(1e300),
            json!(""),
            json!("plain"),
            json!("quote \" backslash \\ newline \n tab \t cr \r bs \u{8} ff \u{c} nul \u{0} esc \u{1b}"),
            json!("héllo wörld ✓ 🎉"),
            json!([]),
            json!([1]),
            json!([1, "two", null, [3.5, {"k": "v"}]]),
            json!({}),
            json!({"a": 1}),
            json!({"nested": {"list": [true, false], "s": "x\"y"}, "n": -42}),
        ];
        for v in values {
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(json_len(&v), text.len(), "{text}");
        }
    }
}
