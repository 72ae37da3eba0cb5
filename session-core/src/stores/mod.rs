//! The stores the core ships: [`MemoryStore`], the embedded default.

mod memory;

pub use memory::MemoryStore;
