//! arbor
