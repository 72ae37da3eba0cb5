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
