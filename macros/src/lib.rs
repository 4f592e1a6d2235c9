//! Procedural macros of the gort runtime (`#[gort::main]`, `#[gort::test]`, `select!`).
//!
//! The runtime crate `gort` re-exports what this crate defines; depend on `gort`, not on this
//! crate directly. The macros arrive with the scheduler and channels.
