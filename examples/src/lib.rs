//! Runnable examples of the session family. The binaries live in `src/bin/`.
